// rmkit launch: starts P data-parallel processes on this machine with the environment torchrun
// would give them (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// GROUP_RANK), forwards SIGINT/SIGTERM/SIGHUP to them, and when one fails stops the others and
// exits with the first failure's code (128 + signal for a killed process). No PyTorch needed.
//   rmkit launch --nproc-per-node 2 -- rmkit train --model ... --output runs/dp
// Several machines: run it on each with --nnodes N --node-rank K --master-addr HOST --master-port P.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "rmkit/core/error.h"

namespace rmkit::cli {
namespace {

std::vector<pid_t> g_children;
volatile sig_atomic_t g_signal = 0;

void forward_signal(int sig) {
  g_signal = sig;
  for (pid_t p : g_children)
    if (p > 0) ::kill(p, sig);
}

// A port free right now on `addr` (the store binds it a moment later; collisions are unlikely).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IoError(std::string("rmkit launch: socket: ") + std::strerror(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  socklen_t len = sizeof sa;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    ::close(fd);
    throw IoError(std::string("rmkit launch: cannot find a free port: ") + std::strerror(errno));
  }
  int port = ntohs(sa.sin_port);
  ::close(fd);
  return port;
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "rmkit";
  buf[n] = '\0';
  return buf;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

int run_launch(const Options& o) {
  const int P = static_cast<int>(o.integer("nproc-per-node"));
  const int N = static_cast<int>(o.integer("nnodes"));
  const int node = static_cast<int>(o.integer("node-rank"));
  if (P < 1) throw UsageError("--nproc-per-node: expected >= 1");
  if (N < 1) throw UsageError("--nnodes: expected >= 1");
  if (node < 0 || node >= N) throw UsageError("--node-rank: expected a value in [0, --nnodes)");
  std::vector<std::string> cmd = o.has("command") ? o.list("command") : std::vector<std::string>{};
  if (cmd.empty()) throw UsageError("missing the command to run after '--' (e.g. -- rmkit train ...)");
  if (cmd[0] == "rmkit") cmd[0] = self_exe();
  const std::string addr = o.str("master-addr");
  int port = static_cast<int>(o.integer("master-port"));
  if (port == 0) {
    if (N > 1) throw UsageError("--master-port: required with --nnodes > 1 (every node must use the same port)");
    port = free_port();
  }
  const double grace = o.number("grace");

  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);

  g_children.assign(static_cast<size_t>(P), -1);
  for (int lr = 0; lr < P; ++lr) {
    pid_t pid = ::fork();
    if (pid < 0) throw IoError(std::string("rmkit launch: fork: ") + std::strerror(errno));
    if (pid == 0) {
      auto set = [](const char* k, const std::string& v) { ::setenv(k, v.c_str(), 1); };
      set("RANK", std::to_string(node * P + lr));
      set("WORLD_SIZE", std::to_string(N * P));
      set("LOCAL_RANK", std::to_string(lr));
      set("LOCAL_WORLD_SIZE", std::to_string(P));
      set("GROUP_RANK", std::to_string(node));
      set("MASTER_ADDR", addr);
      set("MASTER_PORT", std::to_string(port));
      ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      std::vector<char*> argv;
      for (auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "rmkit launch: cannot run %s: %s\n", argv[0], std::strerror(errno));
      std::_Exit(127);
    }
    g_children[static_cast<size_t>(lr)] = pid;
  }
  std::fprintf(stderr, "rmkit launch: %d processes (ranks %d-%d of %d), store %s:%d\n", P, node * P, node * P + P - 1,
               N * P, addr.c_str(), port);

  int first_failure = 0, first_rank = -1, running = P;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        for (pid_t p : g_children)
          if (p > 0) ::kill(p, SIGKILL);
        deadline = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int lr = 0; lr < P; ++lr) {
      if (g_children[static_cast<size_t>(lr)] != pid) continue;
      g_children[static_cast<size_t>(lr)] = -1;
      --running;
      const int code = exit_code_of(status);
      if (code != 0 && first_failure == 0) {
        first_failure = code;
        first_rank = node * P + lr;
        // stop the others: SIGTERM now, SIGKILL after the grace period
        for (pid_t p : g_children)
          if (p > 0) ::kill(p, SIGTERM);
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(grace * 1000));
      }
    }
  }
  if (first_failure != 0) {
    std::fprintf(stderr, "rmkit launch: rank %d failed with exit code %d%s\n", first_rank, first_failure,
                 g_signal ? " (after a forwarded signal)" : "");
    return first_failure;
  }
  return 0;
}

CommandRegistrar reg({
    "launch",
    "run a command as P data-parallel processes on this machine (what torchrun does, without Python)",
    {
        {"nproc-per-node", OptKind::Int, "1", "processes on this machine"},
        {"nnodes", OptKind::Int, "1", "machines taking part"},
        {"node-rank", OptKind::Int, "0", "this machine's index (0 hosts the store)"},
        {"master-addr", OptKind::String, "127.0.0.1", "address of rank 0's machine (store host)"},
        {"master-port", OptKind::Int, "0", "store port (0 = a free port; required with --nnodes > 1)"},
        {"grace", OptKind::Float, "10", "seconds the others get after a failure (SIGTERM) before SIGKILL"},
        {"command", OptKind::String, "", "the command, after '--' (a leading 'rmkit' runs this binary)", false, true},
    },
    {},
    run_launch,
});

}  // namespace
}  // namespace rmkit::cli
