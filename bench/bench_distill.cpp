// Distillation client throughput and resume cost, measured in one run:
//   1. sustained calls/s against a teacher with a fixed latency L per call (the tests' scripted
//      OpenAI-compatible server on 127.0.0.1, with L ms of sleep per answer), for concurrency
//      1..64, as a ratio to the ideal concurrency / L (target >= 0.9);
//   2. a full `refined` pipeline run of ~10,000 calls (2,000 pairs: 4,000 judge calls, then 2,000
//      each of teacher response, refine and re-score), then the same run resumed: wall time and
//      calls sent (target: no network I/O, seconds).
// Usage: bench_distill [--latency-ms 50] [--calls 640] [--pairs 2000]
//        bench_distill --serve-noise ANSWERS.jsonl --port-file F   (the ablation's programmatic
//        teacher: serves until SIGTERM/SIGINT; ANSWERS rows {"question", "answer"})
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "rmkit/core/file_io.h"
#include "rmkit/distill/call_runner.h"
#include "rmkit/distill/http_chat_client.h"
#include "rmkit/distill/pipeline.h"
#include "scripted_teacher.h"

using namespace rmkit;
using namespace rmkit::distill;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string temp_root() {
  char tmpl[] = "/tmp/rmkit_bench_distill_XXXXXX";
  const char* d = mkdtemp(tmpl);
  if (!d) throw IoError("mkdtemp failed");
  return d;
}

struct RemoveOnExit {  // the bench's scratch folder goes with it, on every return path
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

int serve_noise(const std::string& answers_path, const std::string& port_file) {
  std::map<std::string, std::string> answers;
  for_each_line(answers_path, [&](const std::string& line, size_t) {
    auto j = nlohmann::json::parse(line);
    answers[j["question"].get<std::string>()] = j["answer"].get<std::string>();
    return true;
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the server's threads start
  testing::ScriptedTeacher teacher;
  teacher.use_noise_rule(std::move(answers));
  write_file_atomic(port_file, std::to_string(teacher.port()));
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}

int main(int argc, char** argv) {
  int latency_ms = 50, calls = 640, pairs = 2000;
  std::string serve_answers, port_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--latency-ms")) latency_ms = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--calls")) calls = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--pairs")) pairs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--serve-noise")) serve_answers = argv[i + 1];
    else if (!std::strcmp(argv[i], "--port-file")) port_file = argv[i + 1];
  }
  if (!serve_answers.empty()) return serve_noise(serve_answers, port_file);
  const std::string root = temp_root();
  const RemoveOnExit cleanup{root};
  testing::ScriptedTeacher teacher(0, 0, latency_ms);
  HttpClientConfig hc;
  hc.base_url = teacher.base_url();
  hc.timeout_s = 30;

  std::printf("# 1. throughput against a teacher with %d ms per call (%d distinct calls per point)\n", latency_ms, calls);
  std::printf("%-12s %-12s %-12s %s\n", "concurrency", "calls/s", "ideal", "ratio");
  for (int c : {1, 8, 16, 32, 64}) {
    const int n = c == 1 ? std::max(20, calls / 16) : calls;
    CallCache cache(join_path(root, "tp_" + std::to_string(c) + ".sqlite"));
    RunnerConfig rc;
    rc.concurrency = c;
    rc.progress = false;
    CallRunner runner(cache, rc);
    HttpChatClient client(hc);
    std::vector<ChatRequest> reqs(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      reqs[i].model = "scripted";
      reqs[i].messages = {{"user", "question " + std::to_string(i) + " at concurrency " + std::to_string(c)}};
      reqs[i].sampling = {0, 1, 0, 16};
    }
    const double t0 = now_s();
    runner.run("bench", client, reqs);
    const double dt = now_s() - t0;
    const double rate = n / dt, ideal = c * 1000.0 / latency_ms;
    std::printf("%-12d %-12.1f %-12.1f %.3f\n", c, rate, ideal, rate / ideal);
  }

  std::printf("\n# 2. a refined run of %d pairs (~%d calls) at concurrency 64, then resumed\n", pairs, pairs * 5);
  std::string rows;
  for (int i = 0; i < pairs; ++i) {
    nlohmann::json r = {{"id", "p" + std::to_string(i)},
                        {"prompt", "Bench question number " + std::to_string(i) + "?"},
                        {"chosen", "A good and good answer to question " + std::to_string(i) + "."},
                        {"rejected", "A plain answer to question number " + std::to_string(i) + "."}};
    rows += r.dump() + "\n";
  }
  DistillConfig cfg;
  cfg.input = join_path(root, "pairs.jsonl");
  write_file_atomic(cfg.input, rows);
  cfg.workdir = join_path(root, "work");
  cfg.output = join_path(root, "out.jsonl");
  cfg.teacher_model = "scripted";
  RunnerConfig rc;
  rc.concurrency = 64;
  rc.progress = false;
  for (int pass = 0; pass < 2; ++pass) {
    make_dirs(cfg.workdir);
    CallCache cache(join_path(cfg.workdir, "calls.sqlite"));
    CallRunner runner(cache, rc);
    HttpChatClient client(hc);
    DistillClients clients;
    clients.teacher = &client;
    const size_t before = teacher.log().size();
    const double t0 = now_s();
    DistillSummary s = run_distill(cfg, clients, runner, PromptSet::load());
    const double dt = now_s() - t0;
    std::printf("%-8s %8.2f s  calls sent %-6lld cache hits %-6lld requests seen by the teacher %-6zu rows %lld\n",
                pass == 0 ? "first" : "resumed", dt, static_cast<long long>(runner.totals().sent),
                static_cast<long long>(runner.totals().hits), teacher.log().size() - before,
                static_cast<long long>(s.rows_written));
  }
  return 0;
}
