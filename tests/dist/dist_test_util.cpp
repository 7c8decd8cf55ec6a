#include "dist/dist_test_util.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "rmkit/model/safetensors.h"
#include "test_util.h"

namespace rmkit::testing::dist {

std::string write_train_slice(const std::string& dir, size_t n) {
  const std::string path = join_path(dir, "slice.jsonl");
  if (path_exists(path)) return path;
  std::string out;
  size_t i = 0;
  rmkit::for_each_line(asset("prefs/ultrafeedback_sample.jsonl.gz"), [&](const std::string& line, size_t no) {
    auto j = nlohmann::json::parse(line);
    if (i++ % 2 == 0) j["teacher_response"] = "Once upon a time, a little dog played in the park.";
    out += j.dump() + "\n";
    return no < n;
  });
  write_file_atomic(path, out);
  return path;
}

std::string train_args(const std::string& data, const std::string& out, const std::string& loss, int batch,
                       int grad_accum, int steps) {
  return "train --model " + shell_quote(asset("models/stories260K/stories260K.bin")) + " --tokenizer " +
         shell_quote(asset("models/stories260K/tok512.bin")) + " --data " + shell_quote(data) + " --output " +
         shell_quote(out) + " --loss " + loss + " --batch-size " + std::to_string(batch) + " --grad-accum " +
         std::to_string(grad_accum) + " --max-steps " + std::to_string(steps) +
         " --chat-template plain --max-length 64 --lr 2e-4 --warmup-ratio 0.25 --val-fraction 0.15 "
         "--eval-every 3 --head linear --progress off --seed 3 --threads 1 "
         // AdamW divides by sqrt(v) + eps: with the default 1e-8 a parameter whose gradient is ~0
         // turns fp32 summation-order noise (different batch splits) into full-size updates
         "--adam-eps 1e-6";
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  int port = ntohs(sa.sin_port);
  ::close(fd);
  return port;
}

Child spawn(const std::string& cmd, const std::map<std::string, std::string>& env, const std::string& log) {
  Child c;
  c.log = log;
  c.pid = ::fork();
  if (c.pid == 0) {
    ::setpgid(0, 0);  // own process group: a timeout kills the shell and what it started
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    const std::string full = "exec " + cmd + " > " + shell_quote(log) + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  return c;
}

int wait_child(Child& c, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) break;
    if (r < 0) return -2;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-c.pid, SIGKILL);
      ::waitpid(c.pid, &status, 0);
      c.pid = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  c.pid = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

int run_bounded(const std::string& cmd, const std::map<std::string, std::string>& env, double seconds,
                std::string* out) {
  const std::string log = temp_dir("dist_run") + "/out.log";
  Child c = spawn(cmd, env, log);
  int code = wait_child(c, seconds);
  if (out) *out = path_exists(log) ? read_file(log) : "";
  return code;
}

std::vector<double> metric_series(const std::string& out_dir, const std::string& key) {
  std::vector<double> v;
  for (const auto& r : MetricsLog::read(join_path(out_dir, "metrics.jsonl")))
    if (r.contains(key)) v.push_back(r.at(key).get<double>());
  return v;
}

std::map<std::string, torch::Tensor> saved_weights(const std::string& model_dir) {
  return model::read_safetensors(join_path(model_dir, "model.safetensors"));
}

double max_weight_diff(const std::string& dir_a, const std::string& dir_b) {
  auto a = saved_weights(dir_a), b = saved_weights(dir_b);
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (const auto& [k, t] : a) {
    auto it = b.find(k);
    if (it == b.end()) {
      ADD_FAILURE() << "tensor " << k << " missing in " << dir_b;
      continue;
    }
    m = std::max(m, (t.to(torch::kDouble) - it->second.to(torch::kDouble)).abs().max().item<double>());
  }
  return m;
}

}  // namespace rmkit::testing::dist
