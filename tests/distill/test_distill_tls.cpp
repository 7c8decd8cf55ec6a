// The teacher client over https: a local TLS server (cpp-httplib's OpenSSL build) with a
// self-signed certificate made by the openssl CLI; the client trusts it through --ca-cert
// (HttpClientConfig::ca_cert_file), sends the Bearer key, and refuses the server without it.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <thread>

#include "rmkit/core/file_io.h"
#include "rmkit/distill/http_chat_client.h"
#include "test_util.h"

namespace rmkit::distill {
namespace {

TEST(DistillTls, HttpsTeacherWithACustomCaBundle) {
  const std::string dir = ::rmkit::testing::temp_dir("distill_tls");
  const std::string cert = join_path(dir, "cert.pem"), key = join_path(dir, "key.pem");
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                          " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl CLI missing (scripts/setup.sh installs it)";
  httplib::SSLServer srv(cert.c_str(), key.c_str());
  ASSERT_TRUE(srv.is_valid());
  std::string auth;
  srv.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    auth = req.get_header_value("Authorization");
    res.set_content(R"({"choices":[{"index":0,"message":{"role":"assistant","content":"7 3"},"finish_reason":"stop"}],)"
                    R"("usage":{"prompt_tokens":5,"completion_tokens":2}})",
                    "application/json");
  });
  const int port = srv.bind_to_any_port("127.0.0.1");
  std::thread th([&] { srv.listen_after_bind(); });
  while (!srv.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  ChatRequest r;
  r.model = "m";
  r.messages = {{"user", "rate"}};
  HttpClientConfig hc;
  hc.base_url = "https://127.0.0.1:" + std::to_string(port) + "/v1";
  hc.api_key = "sk-tls-test";
  hc.timeout_s = 10;
  hc.ca_cert_file = cert;
  {
    HttpChatClient c(hc);
    const ChatReply rep = c.complete(r);
    EXPECT_EQ(rep.text, "7 3");
    EXPECT_EQ(rep.completion_tokens, 2);
    EXPECT_EQ(auth, "Bearer sk-tls-test");
  }
  // the self-signed certificate is not trusted without the bundle: an error that is not retried
  // (another try cannot succeed) and never quotes the key
  hc.ca_cert_file = "";
  HttpChatClient untrusted(hc);
  try {
    untrusted.complete(r);
    ADD_FAILURE() << "an untrusted certificate was accepted";
  } catch (const CallError& e) {
    EXPECT_EQ(e.kind(), CallError::Kind::Client) << e.what();
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("check --ca-cert"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("sk-tls-test"), std::string::npos);
  }
  srv.stop();
  th.join();
}

}  // namespace
}  // namespace rmkit::distill
