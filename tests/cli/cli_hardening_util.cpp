#include "cli/cli_hardening_util.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace rmkit::hardening {
namespace {

int fork_shell(const std::string& cmd, long long fsize_limit) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // inherited across exec: writes past the limit fail with EFBIG
    if (fsize_limit > 0) {
      rlimit rl{static_cast<rlim_t>(fsize_limit), static_cast<rlim_t>(fsize_limit)};
      ::setrlimit(RLIMIT_FSIZE, &rl);
    }
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return static_cast<int>(pid);
}

}  // namespace

testing::CmdResult run_rmkit_limited(const std::string& args, long long fsize_limit) {
  std::string dir = testing::temp_dir("limited");
  std::string out = join_path(dir, "out"), err = join_path(dir, "err");
  int pid = fork_shell("exec " + testing::shell_quote(testing::rmkit_bin()) + " " + args + " </dev/null >" +
                           testing::shell_quote(out) + " 2>" + testing::shell_quote(err),
                       fsize_limit);
  int st = 0;
  ::waitpid(pid, &st, 0);
  testing::CmdResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  r.out = path_exists(out) ? read_file(out) : "";
  r.err = path_exists(err) ? read_file(err) : "";
  std::filesystem::remove_all(dir);
  return r;
}

int spawn_rmkit(const std::string& args, const std::string& log_dir) {
  return fork_shell("exec " + testing::shell_quote(testing::rmkit_bin()) + " " + args + " </dev/null >" +
                        testing::shell_quote(join_path(log_dir, "out")) + " 2>" +
                        testing::shell_quote(join_path(log_dir, "err")),
                    0);
}

void stop_child(int pid) {
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

}  // namespace rmkit::hardening
