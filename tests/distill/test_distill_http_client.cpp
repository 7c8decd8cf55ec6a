// The OpenAI-compatible teacher client against a misbehaving local server: the API key echoed by
// the server never reaches an error message, a call is bounded as a whole by --timeout (a server
// that drips its reply byte by byte used to hold it for ever), and a certificate that cannot be
// verified is not retried.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "rmkit/distill/http_chat_client.h"

namespace rmkit::distill {
namespace {

using Clock = std::chrono::steady_clock;

class EchoServer {
 public:
  EchoServer() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string auth = req.get_header_value("Authorization");
      if (req.body.find("echo401") != std::string::npos) {
        res.status = 401;
        res.set_content(nlohmann::json{{"error", {{"message", "invalid key: " + auth}}}}.dump(), "application/json");
      } else if (req.body.find("echo200") != std::string::npos) {
        res.set_content("{\"broken\": \"" + auth + "\"}", "application/json");  // no choices: malformed
      } else {  // drip: one byte every 100 ms for up to 30 s
        res.set_chunked_content_provider("application/json", [this](size_t, httplib::DataSink& sink) {
          for (int i = 0; i < 300 && !stop_; ++i) {
            if (!sink.is_writable() || !sink.write(" ", 1)) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
          sink.done();
          return true;
        });
      }
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~EchoServer() {
    stop_ = true;
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
};

ChatRequest ask(const std::string& content) {
  ChatRequest r;
  r.model = "m";
  r.messages = {{"user", content}};
  return r;
}

TEST(DistillHttpClient, EchoedKeyNeverReachesTheMessage) {
  EchoServer srv;
  HttpClientConfig cfg;
  cfg.base_url = srv.url();
  cfg.api_key = "sk-SECRET-123456789";
  cfg.timeout_s = 10;
  HttpChatClient client(cfg);
  for (const std::string what : {"echo401", "echo200"}) {
    try {
      client.complete(ask(what));
      FAIL() << what << " accepted";
    } catch (const CallError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.find("sk-SECRET"), std::string::npos) << msg;
      EXPECT_NE(msg.find("Bearer ***"), std::string::npos) << msg;  // the echo is there, redacted
    }
  }
}

TEST(DistillHttpClient, TimeoutBoundsTheWholeCall) {
  EchoServer srv;
  HttpClientConfig cfg;
  cfg.base_url = srv.url();
  cfg.timeout_s = 0.5;  // each byte arrives within 0.1 s: a per-read timeout never fires
  HttpChatClient client(cfg);
  const auto t0 = Clock::now();
  try {
    client.complete(ask("drip"));
    FAIL() << "a dripping reply was accepted";
  } catch (const CallError& e) {
    EXPECT_EQ(e.kind(), CallError::Kind::Timeout) << e.what();
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("within the --timeout of 0.5 s"), std::string::npos) << e.what();
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_LT(s, 3.0);  // the deadline (0.5 s) plus slack, far from the 30 s the server would drip
  client.release_thread();
}

}  // namespace
}  // namespace rmkit::distill
