// Helpers of the CLI hardening tests (issue 18): small stories260K training runs on a slice of
// UltraFeedback, a process runner with a file-size limit, and file digests.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace rmkit::hardening {

inline const std::string kModel = "models/stories260K/stories260K.bin";
inline const std::string kTok = "models/stories260K/tok512.model";

// First `n` rows of a shared prefs file as a plain .jsonl in `dir`.
inline std::string slice(const std::string& dir, const std::string& rel, size_t n, const std::string& name) {
  std::string out, path = join_path(dir, name);
  for_each_line(testing::asset(rel), [&](const std::string& line, size_t no) {
    out += line + "\n";
    return no < n;
  });
  write_file_atomic(path, out);
  return path;
}

// `rmkit train` arguments for a tiny run (4 steps unless overridden by later options: the option
// table keeps the last value).
inline std::string train_args(const std::string& data, const std::string& out) {
  return "train --model " + testing::shell_quote(testing::asset(kModel)) + " --tokenizer " +
         testing::shell_quote(testing::asset(kTok)) + " --data " + testing::shell_quote(data) + " --output " +
         testing::shell_quote(out) +
         " --max-steps 4 --batch-size 4 --max-length 64 --chat-template plain --lr 1e-3 --val-fraction 0"
         " --progress off --save-every 1 --keep-checkpoints 0 --seed 5";
}

// The last non-empty line of a command's output (its one-line error).
inline std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  auto p = t.rfind('\n');
  return p == std::string::npos ? t : t.substr(p + 1);
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> v;
  for_each_line(path, [&](const std::string& line, size_t) {
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
    return true;
  });
  return v;
}

inline size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Runs the rmkit binary in a forked child whose file size limit is
// `fsize_limit` bytes (0 = none) and which ignores SIGXFSZ, so an oversized write fails with EFBIG
// the way a full disk fails with ENOSPC.
// `args` is shell-quoted as for testing::run_rmkit; the shell execs rmkit, so the limits apply to it.
testing::CmdResult run_rmkit_limited(const std::string& args, long long fsize_limit);

// Starts `rmkit <args>` in the background (stdout/stderr to log_dir/out, log_dir/err); the shell
// execs rmkit, so the returned pid is rmkit's.
int spawn_rmkit(const std::string& args, const std::string& log_dir);
// Sends SIGTERM (then SIGKILL after 5 s) and reaps the child.
void stop_child(int pid);

}  // namespace rmkit::hardening
