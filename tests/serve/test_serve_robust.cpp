// Robustness of `rmkit serve`: a few thousand random and mutated requests over raw sockets (every
// answer a well-formed HTTP response, the server survives, RSS stays flat), and the process
// lifecycle: SIGTERM drains a request in flight and exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <mutex>
#include <random>
#include <regex>
#include <thread>

#include "rmkit/core/file_io.h"
#include "serve_fixture.h"

namespace rmkit::serve::testing {
namespace {

// Sends raw bytes to 127.0.0.1:port and returns whatever comes back within timeout_ms (requests
// say Connection: close, so the server closes after answering; an incomplete request gets no
// answer once the server's read timeout passes).
std::string raw_exchange(int port, const std::string& bytes, int timeout_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "<connect failed>";
  }
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count());
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string http_post(const std::string& path, const std::string& body, const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
}

TEST(ServeFuzz, RandomAndMutatedRequestsGetWellFormedAnswers) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  auto cfg = base_config();
  cfg.max_body_bytes = 256 * 1024;
  cfg.request_timeout_s = 1;  // also the read timeout: incomplete requests are dropped after 1 s
  RunningServer srv(cfg);
  const std::vector<std::string> seeds = {
      R"({"inputs": [{"prompt": "Hi", "response": "Once upon a time"}, {"text": "Lily went"}]})",
      R"({"prompt": [{"role": "user", "content": "Hi"}], "responses": ["a", "b"]})",
      R"({"query": ["Once upon a time"], "prompts": ["Once"]})",
      R"({"input": ["Once upon a time", [1, 2, 3]], "use_activation": false})",
      R"({"inputs": [["Tell me", "a story"]], "raw_scores": true})",
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})"};
  const std::vector<std::string> paths = {"/v1/score", "/v1/compare", "/get_reward", "/classify", "/pooling",
                                          "/predict",  "/v1/models",  "/health",     "/metrics",  "/x"};
  std::mt19937 rng(7);
  auto rnd = [&](size_t n) { return static_cast<size_t>(rng() % std::max<size_t>(1, n)); };
  auto mutate = [&](std::string s) {
    const int edits = 1 + static_cast<int>(rnd(6));
    for (int e = 0; e < edits && !s.empty(); ++e) {
      switch (rnd(5)) {
        case 0: s[rnd(s.size())] = static_cast<char>(rnd(256)); break;                   // flip a byte
        case 1: s.erase(rnd(s.size())); break;                                            // truncate
        case 2: s.insert(rnd(s.size()), std::string(1 + rnd(8), static_cast<char>(rnd(256)))); break;
        case 3: s.insert(rnd(s.size()), s.substr(rnd(s.size()), 1 + rnd(40))); break;   // duplicate a piece
        default: s.insert(rnd(s.size()), rnd(2) ? "[" : "{\"inputs\":"); break;
      }
    }
    return s;
  };
  const std::regex status_line("^HTTP/1\\.[01] [1-5][0-9][0-9] ");
  // Build every request first (one rng), then send them from 16 clients at once: requests that
  // never complete (garbage, a Content-Length beyond the body) wait for the read timeout.
  const int total = 3000;
  std::vector<std::pair<std::string, bool>> reqs;  // (bytes, must be answered)
  for (int i = 0; i < total; ++i) {
    std::string req;
    bool must = false;
    const size_t kind = rnd(10);
    if (kind < 6) {  // mutated body on a real route, correctly framed: always answered
      req = http_post(paths[rnd(6)], mutate(seeds[rnd(seeds.size())]));
      must = true;
    } else if (kind < 8) {  // random headers
      std::string h;
      for (size_t k = 0, n = rnd(5); k < n; ++k) {
        std::string name(1 + rnd(12), 'a'), value(rnd(64), 'v');
        for (auto& c : name) c = static_cast<char>('a' + rnd(26));
        for (auto& c : value) c = static_cast<char>(32 + rnd(95));
        h += name + ": " + value + "\r\n";
      }
      if (rnd(4) == 0) h += "Authorization: Bearer " + std::string(rnd(300), 'k') + "\r\n";
      req = http_post(paths[rnd(paths.size())], seeds[rnd(seeds.size())], h);
      must = true;
      if (rnd(5) == 0) req = mutate(req), must = false;  // a broken request line / header block
    } else if (kind < 9) {  // wrong Content-Length
      std::string body = seeds[rnd(seeds.size())];
      req = "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(rnd(2) ? body.size() + 50 : 3) +
            "\r\nConnection: close\r\n\r\n" + body;
    } else {  // garbage
      req.resize(1 + rnd(200));
      for (auto& c : req) c = static_cast<char>(rnd(256));
    }
    reqs.emplace_back(std::move(req), must);
  }
  std::atomic<int> next{0}, answered{0}, malformed{0}, missing{0}, refused{0};
  std::atomic<double> rss_warm{0};
  std::mutex mu;
  std::string first_bad;
  std::vector<std::thread> th;
  for (int t = 0; t < 16; ++t)
    th.emplace_back([&] {
      for (int i; (i = next++) < total;) {
        const std::string resp = raw_exchange(srv.port, reqs[i].first, 4000);
        if (resp == "<connect failed>") {
          ++refused;
          continue;
        }
        if (!resp.empty()) {
          ++answered;
          if (!std::regex_search(resp, status_line)) {
            ++malformed;
            std::lock_guard<std::mutex> lk(mu);
            if (first_bad.empty()) first_bad = resp.substr(0, 80);
          }
        } else if (reqs[i].second) {
          ++missing;
        }
        if (i == 500) rss_warm = process_rss_bytes();
      }
    });
  for (auto& t : th) t.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(malformed.load(), 0) << first_bad;
  EXPECT_EQ(missing.load(), 0) << "complete requests that got no answer";
  EXPECT_GT(answered.load(), total * 6 / 10);
  const double rss_end = process_rss_bytes();
  EXPECT_LT(rss_end - rss_warm.load(), 64.0 * 1024 * 1024) << "RSS grew from " << rss_warm.load() << " to " << rss_end;
  auto cli = srv.client();
  EXPECT_EQ(get(cli, "/health").status, 200);
  EXPECT_EQ(post(cli, "/v1/score", {{"inputs", {{{"text", "Once upon a time"}}}}}).status, 200);
}

// A declared body past --max-body-bytes and a POST without Content-Length are refused before any
// body is read, at once: httplib would first read and discard the declared bytes, or read until
// the client closes, holding a worker up to the read timeout (here 30 s). The answer says
// Connection: close, since the body was never read.
TEST(ServeLimits, RefusalsBeforeTheBodyAreImmediate) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  auto cfg = base_config();
  cfg.max_body_bytes = 64 * 1024;
  cfg.request_timeout_s = 30;
  RunningServer srv(cfg);
  struct Case {
    std::string request, status;
  };
  const std::vector<Case> cases = {
      {"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 9999999999\r\n\r\n{}",
       "413"},
      {"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999999999999999\r\n\r\n{}", "413"},
      {"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n{}", "411"}};
  for (const auto& c : cases) {
    // whatever arrives within 1.5 s: before the fix, nothing (the server was reading the body)
    const std::string got = raw_exchange(srv.port, c.request, 1500);
    EXPECT_EQ(got.rfind("HTTP/1.1 " + c.status, 0), 0u) << got;
    EXPECT_NE(got.find("\"error\""), std::string::npos) << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;  // the unread body ends the connection
  }
  // the server serves normally afterwards
  auto cli = srv.client();
  EXPECT_EQ(post(cli, "/v1/score", {{"inputs", {{{"text", "Once upon a time"}}}}}).status, 200);
}

TEST(ServeProcess, SigtermDrainsTheRequestInFlightAndExitsZero) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  const std::string dir = rmkit::testing::temp_dir("serve_proc");
  const std::string port_file = join_path(dir, "port");
  const std::string log = join_path(dir, "serve.log");
  const std::string bin = rmkit::testing::rmkit_bin(), model = rm_dir();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    execl(bin.c_str(), bin.c_str(), "serve", "--model", model.c_str(), "--port", "0", "--port-file",
          port_file.c_str(), "--max-wait-ms", "400", "--threads", "1", "--drain-timeout", "20", (char*)nullptr);
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    if (path_exists(port_file)) port = std::stoi(read_file(port_file));
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(port, 0) << read_file(log);
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    auto r = c.Get("/health");
    ready = r && r->status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(ready) << read_file(log);
  // a request that sits in the batcher's 400 ms window when SIGTERM arrives
  Reply in_flight;
  std::thread t([&] {
    httplib::Client c2("127.0.0.1", port);
    c2.set_read_timeout(30, 0);
    in_flight = post(c2, "/v1/score", {{"inputs", {{{"prompt", "Tell me a story."}, {"response", "Once upon a time"}}}}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  kill(pid, SIGTERM);
  t.join();
  int status = 0;
  pid_t w = 0;
  for (int i = 0; i < 400 && w == 0; ++i) {
    w = waitpid(pid, &status, WNOHANG);
    if (w == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "rmkit serve did not exit within 20 s of SIGTERM\n" << read_file(log);
  }
  EXPECT_EQ(in_flight.status, 200) << in_flight.raw;
  ASSERT_TRUE(WIFEXITED(status)) << read_file(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(log);
  const std::string text = read_file(log);
  EXPECT_NE(text.find("listening on http://127.0.0.1:"), std::string::npos) << text;
  EXPECT_NE(text.find("SIGTERM, draining"), std::string::npos) << text;
}

// SIGTERM while a model is still loading (here: a FIFO nobody writes, as a model on a hung network
// disk would be) exits within --drain-timeout instead of waiting for the load for ever.
TEST(ServeProcess, SigtermWhileLoadingExitsWithinTheDrainTimeout) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/tok512.model"));
  const std::string dir = rmkit::testing::temp_dir("serve_loading");
  const std::string fifo = join_path(dir, "model.bin"), port_file = join_path(dir, "port"), log = join_path(dir, "serve.log");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string bin = rmkit::testing::rmkit_bin(), tok = rmkit::testing::asset("models/stories260K/tok512.model");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    execl(bin.c_str(), bin.c_str(), "serve", "--model", fifo.c_str(), "--tokenizer", tok.c_str(), "--port", "0",
          "--port-file", port_file.c_str(), "--threads", "1", "--drain-timeout", "1", (char*)nullptr);
    _exit(127);
  }
  auto reap = [&](double seconds, int* status) {
    for (int i = 0; i < static_cast<int>(seconds * 20); ++i) {
      if (waitpid(pid, status, WNOHANG) == pid) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    if (path_exists(port_file)) port = std::stoi(read_file(port_file));
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  int status = 0;
  if (port <= 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << read_file(log);
  }
  httplib::Client c("127.0.0.1", port);
  Reply h = get(c, "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body["status"], "loading");
  const auto t0 = std::chrono::steady_clock::now();
  kill(pid, SIGTERM);
  const bool exited = reap(10, &status);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "still running 10 s after SIGTERM\n" << read_file(log);
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  ASSERT_TRUE(WIFEXITED(status)) << read_file(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(log);
  EXPECT_NE(read_file(log).find("drain timed out, exiting"), std::string::npos) << read_file(log);
}

TEST(ServeProcess, BadOptionsAreOneLineUsageErrors) {
  // an empty --api-key (e.g. "$KEY" with KEY unset) is refused, not an open server
  for (const std::string& args : {"--port 70000", "--max-wait-ms -1", "--request-timeout nan", "--http-threads 2",
                                  "--api-key ''", "--api-key ' '"}) {
    auto r = rmkit::testing::run_rmkit("serve --model " + rmkit::testing::shell_quote(rm_dir()) + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(args.substr(0, args.find(' '))), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace rmkit::serve::testing
