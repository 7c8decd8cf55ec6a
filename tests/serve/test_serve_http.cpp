// The HTTP surface of `rmkit serve`: compatibility routes against fixtures of the clients' wire
// formats, auth, errors, limits, health while loading, metrics exposition.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <thread>

#include "rmkit/core/file_io.h"
#include "serve_fixture.h"

namespace rmkit::serve::testing {
namespace {


double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

class ServeHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cfg = base_config();
    cfg.api_keys = {"k-one", "k-two"};
    srv_ = new RunningServer(cfg);
  }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  // raw reward of a templated text through rmkit's own route
  static double text_reward(const std::string& t) {
    Reply r = post(srv_->client(), "/v1/score", {{"inputs", {{{"text", t}}}}}, "k-one");
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body["data"][0]["reward"].get<double>();
  }
  static double chat_reward(const std::string& prompt, const std::string& reply) {
    Reply r = post(srv_->client(), "/v1/score", {{"inputs", {{{"prompt", prompt}, {"response", reply}}}}}, "k-one");
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body["data"][0]["reward"].get<double>();
  }
  static RunningServer* srv_;
};
RunningServer* ServeHttp::srv_ = nullptr;

TEST_F(ServeHttp, CompatibilityRoutesMatchFixturesAndScore) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  auto cli = srv_->client();
  {  // OpenRLHF
    json f = fixture("openrlhf_get_reward.json");
    Reply r = post(cli, "/get_reward", f["request"], "k-one");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(shape_diff(f["response"], r.body), "");
    for (size_t i = 0; i < 2; ++i) {
      const double want = text_reward(f["request"]["query"][i].get<std::string>());
      EXPECT_NEAR(r.body["rewards"][i].get<double>(), want, 1e-5);
      EXPECT_NEAR(r.body["scores"][i].get<double>(), want, 1e-5);
    }
  }
  {  // vLLM /classify, default activation: sigmoid for one label
    json f = fixture("vllm_classify.json");
    Reply r = post(cli, "/classify", f["request"], "k-one");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(shape_diff(f["response"], r.body), "");
    EXPECT_EQ(r.body["data"].size(), 2u);
    for (size_t i = 0; i < 2; ++i)
      EXPECT_NEAR(r.body["data"][i]["probs"][0].get<double>(), sig(text_reward(f["request"]["input"][i])), 1e-5);
    EXPECT_EQ(r.body["id"].get<std::string>().rfind("classify-", 0), 0u);
  }
  {  // verl: activation false, reads data[-1].probs[-1]
    json f = fixture("vllm_classify_verl.json");
    Reply r = post(cli, "/classify", f["request"], "k-one");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(shape_diff(f["response"], r.body), "");
    EXPECT_NEAR(r.body["data"].back()["probs"].back().get<double>(), text_reward(f["request"]["input"]), 1e-5);
  }
  {  // vLLM /pooling with messages and use_activation false
    json f = fixture("vllm_pooling.json");
    Reply r = post(cli, "/pooling", f["request"], "k-one");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(shape_diff(f["response"], r.body), "");
    EXPECT_NEAR(r.body["data"][0]["data"][0].get<double>(),
                chat_reward("Tell me a story.", "Once upon a time there was a cat."), 1e-5);
  }
  {  // token-id input equals the text it encodes (BOS already first: not doubled)
    auto tok = text::load_tokenizer(rm_dir());
    auto ids = tok->encode("Once upon a time there was a cat.", true, false);
    Reply r = post(cli, "/classify", {{"input", ids}, {"use_activation", false}}, "k-one");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_NEAR(r.body["data"][0]["probs"][0].get<double>(), text_reward("Once upon a time there was a cat."), 1e-5);
  }
  {  // TEI: single, batch (sigmoid by default), pair
    json f = fixture("tei_predict_single.json");
    Reply r = post(cli, "/predict", f["request"], "k-one");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(shape_diff(f["response"], r.body), "");
    EXPECT_NEAR(r.body[0]["score"].get<double>(), text_reward(f["request"]["inputs"]), 1e-5);
    f = fixture("tei_predict_batch.json");
    r = post(cli, "/predict", f["request"], "k-one");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(shape_diff(f["response"], r.body), "");
    ASSERT_EQ(r.body.size(), 3u);
    for (size_t i = 0; i < 3; ++i)
      EXPECT_NEAR(r.body[i][0]["score"].get<double>(), sig(text_reward(f["request"]["inputs"][i])), 1e-5);
    f = fixture("tei_predict_pair.json");
    r = post(cli, "/predict", f["request"], "k-one");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(shape_diff(f["response"], r.body), "");
    EXPECT_NEAR(r.body[0]["score"].get<double>(),
                chat_reward(f["request"]["inputs"][0], f["request"]["inputs"][1]), 1e-5);
  }
  {  // /v1/models
    Reply r = get(cli, "/v1/models", "k-two");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["object"], "list");
    EXPECT_EQ(r.body["data"][0]["id"], "rm");
    EXPECT_EQ(r.body["data"][0]["object"], "model");
  }
}

TEST_F(ServeHttp, EveryRouteButHealthNeedsTheKey) {
  auto cli = srv_->client();
  const json score_body = {{"inputs", {{{"text", "Once upon a time"}}}}};
  const std::vector<std::pair<std::string, json>> posts = {
      {"/v1/score", score_body},
      {"/v1/compare", {{"prompt", "Hi"}, {"responses", {"a", "b"}}}},
      {"/get_reward", {{"query", {"Once upon a time"}}}},
      {"/classify", {{"input", "Once upon a time"}}},
      {"/pooling", {{"input", "Once upon a time"}}},
      {"/predict", {{"inputs", "Once upon a time"}}}};
  for (const auto& [path, body] : posts) {
    EXPECT_EQ(post(cli, path, body).status, 401) << path;
    Reply wrong = post(cli, path, body, "k-onf");
    EXPECT_EQ(wrong.status, 401) << path;
    EXPECT_EQ(wrong.body["error"]["type"], "authentication_error");
    EXPECT_EQ(wrong.raw.find("k-one"), std::string::npos) << "a key leaked into an error";
    EXPECT_EQ(post(cli, path, body, "k-one").status, 200) << path;
    EXPECT_EQ(post(cli, path, body, "k-two").status, 200) << path;
  }
  EXPECT_EQ(get(cli, "/v1/models").status, 401);
  EXPECT_EQ(get(cli, "/metrics").status, 401);
  EXPECT_EQ(get(cli, "/metrics", "k-one").status, 200);
  EXPECT_EQ(get(cli, "/health").status, 200);
  EXPECT_EQ(get(cli, "/nope").status, 401);  // unknown routes too: nothing is revealed without a key
}

TEST_F(ServeHttp, BadRequestsNameTheField) {
  auto cli = srv_->client();
  struct Case {
    std::string body;
    int status;
    std::string in_message;
  };
  const std::vector<Case> cases = {
      {"{not json", 400, "invalid JSON"},
      {"[1,2]", 400, "JSON object"},
      {R"({"inputs": "x"})", 400, "inputs"},
      {R"({"inputs": []})", 422, "no input"},
      {R"({"inputs": [{"text": 5}]})", 400, "inputs[0].text"},
      {R"({"inputs": [{"prompt": "a"}]})", 400, "inputs[0]"},
      {R"({"inputs": [{"messages": [{"role": "user", "content": "hi"}]}]})", 422, "assistant"},
      {R"({"inputs": [{"messages": [{"role": "robot", "content": "hi"}]}]})", 422, "inputs[0].messages[0].role"},
      {R"({"inputs": [{"text": "a"}], "temperature": 1})", 400, "temperature"},
      {R"({"model": "other", "inputs": [{"text": "a"}]})", 404, "other"},
      {"{\"inputs\": [{\"text\": \"\xff\xfe\"}]}", 400, "invalid JSON"},
  };
  for (const auto& c : cases) {
    Reply r = post_raw(cli, "/v1/score", c.body, "k-one");
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.raw;
    ASSERT_TRUE(r.body.contains("error")) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], c.status);
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find(c.in_message), std::string::npos)
        << c.body << " -> " << r.raw;
  }
  Reply r = post_raw(cli, "/v1/nothing", "{}", "k-one");
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.body.contains("error")) << r.raw;
  // classify: exactly one of input/messages; ids outside the vocabulary
  EXPECT_EQ(post(cli, "/classify", json::object(), "k-one").status, 400);
  EXPECT_EQ(post(cli, "/classify", {{"input", {1, 99999}}}, "k-one").status, 422);
}

TEST(ServeLimits, BodyInputsQueueTimeoutAndDisconnect) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  auto cfg = base_config();
  cfg.max_body_bytes = 64 * 1024;
  cfg.max_inputs = 16;
  cfg.batcher.max_queue = 24;
  RunningServer srv(cfg);
  auto cli = srv.client();
  // 413: body
  Reply big = post_raw(cli, "/v1/score", "{\"inputs\": [{\"text\": \"" + std::string(100 * 1024, 'a') + "\"}]}");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.raw.find("--max-body-bytes"), std::string::npos) << big.raw;
  // 413: inputs
  json many = json::array();
  for (int i = 0; i < 17; ++i) many.push_back({{"text", "a"}});
  Reply toomany = post(cli, "/v1/score", {{"inputs", many}});
  EXPECT_EQ(toomany.status, 413);
  EXPECT_NE(toomany.raw.find("16"), std::string::npos) << toomany.raw;
  // 503 under a flood: 12 clients x 16 long inputs against a queue of 24 sequences
  std::string story;
  for (int i = 0; i < 40; ++i) story += "Lily and Ben went to the park to play with a big red ball. ";
  json heavy = json::array();
  for (int i = 0; i < 16; ++i) heavy.push_back({{"text", story + std::to_string(i)}});
  std::atomic<int> ok{0}, overloaded{0}, other{0}, health_ok{0}, health_bad{0};
  std::atomic<bool> retry_after_seen{false}, flooding{true};
  std::vector<std::thread> th;
  for (int t = 0; t < 12; ++t)
    th.emplace_back([&] {
      auto c = srv.client();
      for (int k = 0; k < 3; ++k) {
        Reply r = post(c, "/v1/score", {{"inputs", heavy}});
        if (r.status == 200) ++ok;
        else if (r.status == 503) {
          ++overloaded;
          if (r.retry_after == "1") retry_after_seen = true;
        } else ++other;
      }
    });
  std::thread health([&] {
    auto c = srv.client(5);
    while (flooding) {
      auto t0 = std::chrono::steady_clock::now();
      Reply h = get(c, "/health");
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      (h.status == 200 && s < 2.0) ? ++health_ok : ++health_bad;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (auto& t : th) t.join();
  flooding = false;
  health.join();
  EXPECT_GT(overloaded.load(), 0);
  EXPECT_TRUE(retry_after_seen.load());
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(health_ok.load(), 0);
  EXPECT_EQ(health_bad.load(), 0);
  // serves normally afterwards
  EXPECT_EQ(post(cli, "/v1/score", {{"inputs", {{{"text", "Once upon a time"}}}}}).status, 200);
  EXPECT_EQ(srv.server->metrics().value("rmkit_queue_sequences", {{"model", "rm"}}), 0);

  // client disconnect mid-request: the client sends a heavy request and hangs up at once; the
  // server finishes the batch, cannot write the answer, and carries on
  {
    json work = json::array();
    for (int i = 0; i < 16; ++i) work.push_back({{"text", story + story + std::to_string(i)}});
    const std::string body = json{{"inputs", work}}.dump();
    const std::string req = "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(srv.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    ::close(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 0; i < 50 && srv.server->metrics().value("rmkit_queue_sequences", {{"model", "rm"}}) > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(post(cli, "/v1/score", {{"inputs", {{{"text", "Once upon a time"}}}}}).status, 200);
}

TEST(ServeLimits, TimeoutGives504) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  auto cfg = base_config();
  cfg.request_timeout_s = 0.02;
  cfg.batcher.max_wait_ms = 200;  // the batch waits longer than the request may
  RunningServer srv(cfg);
  Reply r = post(srv.client(), "/v1/score", {{"inputs", {{{"text", "Once upon a time"}}}}});
  EXPECT_EQ(r.status, 504) << r.raw;
  EXPECT_EQ(r.body["error"]["type"], "timeout_error");
}

TEST(ServeLifecycle, HealthIs503WhileLoadingAndAfterAFailedLoad) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  auto cfg = base_config();
  cfg.before_load = [&] {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return release; });
  };
  Server s(cfg);
  const int port = s.bind();
  s.start();
  httplib::Client c("127.0.0.1", port);
  Reply h = get(c, "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body["status"], "loading");
  Reply early = post(c, "/v1/score", {{"inputs", {{{"text", "a"}}}}});
  EXPECT_EQ(early.status, 503);
  EXPECT_FALSE(early.retry_after.empty());
  {
    std::lock_guard<std::mutex> lk(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(s.wait_ready(60));
  EXPECT_EQ(get(c, "/health").status, 200);
  s.shutdown();

  auto bad = base_config();
  bad.models = {{"broken", "/nonexistent/model"}};
  Server f(bad);
  const int p2 = f.bind();
  f.start();
  EXPECT_FALSE(f.wait_ready(30));
  httplib::Client c2("127.0.0.1", p2);
  Reply fh = get(c2, "/health");
  EXPECT_EQ(fh.status, 503);
  EXPECT_EQ(fh.body["status"], "failed");
  f.shutdown();
}

TEST(ServeMetrics, PrometheusExposition) {
  MetricsRegistry m;
  m.counter("x_requests_total", "Requests\nby route");
  m.histogram("x_seconds", "Latency", {0.1, 1});
  m.gauge("x_depth", "Depth");
  m.inc("x_requests_total", {{"route", "/a\"b\\c\nd"}, {"status", "200"}});
  m.inc("x_requests_total", {{"route", "/a\"b\\c\nd"}, {"status", "200"}}, 2);
  m.observe("x_seconds", 0.05);
  m.observe("x_seconds", 0.5);
  m.observe("x_seconds", 5);
  m.set("x_depth", 3);
  const std::string text = m.render({{"proc_rss_bytes", "RSS", 1024}});
  const std::string expected =
      "# HELP x_requests_total Requests\\nby route\n# TYPE x_requests_total counter\n"
      "x_requests_total{route=\"/a\\\"b\\\\c\\nd\",status=\"200\"} 3\n"
      "# HELP x_seconds Latency\n# TYPE x_seconds histogram\n"
      "x_seconds_bucket{le=\"0.1\"} 1\nx_seconds_bucket{le=\"1\"} 2\nx_seconds_bucket{le=\"+Inf\"} 3\n"
      "x_seconds_sum 5.55\nx_seconds_count 3\n"
      "# HELP x_depth Depth\n# TYPE x_depth gauge\nx_depth 3\n"
      "# HELP proc_rss_bytes RSS\n# TYPE proc_rss_bytes gauge\nproc_rss_bytes 1024\n";
  EXPECT_EQ(text, expected);
}

}  // namespace
}  // namespace rmkit::serve::testing
