#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace rmkit::testing {

namespace {

// TMPDIR/rmkit_test_<pid>: every temp_dir of this process lies under it.
const std::filesystem::path& process_root() {
  static const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("rmkit_test_" + std::to_string(::getpid()));
  return root;
}

}  // namespace

std::string temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto base = process_root() / (tag + "_" + std::to_string(counter++));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  return base.string();
}

void finish_temp_dirs(bool passed) {
  const auto& root = process_root();
  std::error_code ec;
  if (!std::filesystem::exists(root, ec)) return;
  const char* keep = std::getenv("RMKIT_KEEP_TEST_TMP");
  if (!passed || (keep && *keep && std::string(keep) != "0")) {
    std::fprintf(stderr, "test files kept in %s\n", root.c_str());
    return;
  }
  std::filesystem::remove_all(root, ec);
  if (ec) std::fprintf(stderr, "could not remove %s: %s\n", root.c_str(), ec.message().c_str());
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

CmdResult run_rmkit(const std::string& args, const std::string& stdin_text) {
  std::string dir = temp_dir("cmd");
  std::string in = dir + "/in", out = dir + "/out", err = dir + "/err";
  rmkit::write_file_atomic(in, stdin_text);
  std::string cmd = shell_quote(rmkit_bin()) + " " + args + " <" + in + " >" + out + " 2>" + err;
  int st = std::system(cmd.c_str());
  CmdResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = rmkit::read_file(out);
  r.err = rmkit::read_file(err);
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace rmkit::testing
