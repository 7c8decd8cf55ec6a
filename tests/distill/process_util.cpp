#include "process_util.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace rmkit::distill::testing {

pid_t spawn_rmkit(const std::vector<std::string>& args, const std::string& log) {
  const std::string bin = ::rmkit::testing::rmkit_bin();
  std::vector<std::string> all = {bin};
  all.insert(all.end(), args.begin(), args.end());
  pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int wait_child(pid_t pid, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  int status = 0;
  while (std::chrono::steady_clock::now() < end) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

int wait_for_server(const std::string& port_file, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  int port = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (port == 0 && path_exists(port_file)) {
      const std::string s = read_file(port_file);
      if (!s.empty()) port = std::stoi(s);
    }
    if (port > 0) {
      httplib::Client c("127.0.0.1", port);
      c.set_connection_timeout(1, 0);
      auto r = c.Get("/health");
      if (r && r->status == 200) return port;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

}  // namespace rmkit::distill::testing
