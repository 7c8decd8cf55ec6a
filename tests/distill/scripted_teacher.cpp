#include "scripted_teacher.h"

#include <sys/socket.h>

#include <chrono>
#include <cstdio>

namespace rmkit::distill::testing {

using json = nlohmann::json;

int quality(const std::string& text) {
  int n = 0;
  for (size_t p = text.find("good"); p != std::string::npos; p = text.find("good", p + 4)) ++n;
  return 1 + std::min(9, n);
}

int noise_marks(const std::string& text) {
  int n = 0;
  for (size_t p = text.find(" ~~"); p != std::string::npos; p = text.find(" ~~", p + 3)) ++n;
  return n;
}

int noise_quality(const std::string& text) { return 10 - std::min(9, noise_marks(text)); }

std::string remove_marks(const std::string& text, int n) {
  std::string s = text;
  for (int i = 0; i < n; ++i) {
    const size_t p = s.find(" ~~");
    if (p == std::string::npos) break;
    s.erase(p, 3);
  }
  return s;
}

void ScriptedTeacher::use_noise_rule(std::map<std::string, std::string> answers) {
  std::lock_guard<std::mutex> lk(mu_);
  noise_ = true;
  answers_ = std::move(answers);
}

namespace {

std::string between(const std::string& s, const std::string& a, const std::string& b) {
  const size_t i = s.find(a);
  if (i == std::string::npos) return "";
  const size_t j = s.find(b, i + a.size());
  if (j == std::string::npos) return "";
  return s.substr(i + a.size(), j - i - a.size());
}

std::string trim_nl(std::string s) {
  while (!s.empty() && (s.front() == '\n' || s.front() == ' ')) s.erase(s.begin());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

ScriptedTeacher::ScriptedTeacher(double position_bias, int slow_ms, int latency_ms)
    : bias_(position_bias), slow_ms_(slow_ms), latency_ms_(latency_ms) {
  server_.new_task_queue = [] { return new httplib::ThreadPool(160); };
  // cpp-httplib 0.11's defaults close a keep-alive connection after 5 requests, send the
  // response head and body without TCP_NODELAY (a delayed-ACK stall per call) and listen with a
  // backlog of 5: 64 clients reconnecting at once overflow it and wait out a 1 s SYN retransmit.
  server_.set_keep_alive_max_count(100000);
  server_.set_tcp_nodelay(true);
  int listen_fd = -1;
  server_.set_socket_options([&listen_fd](socket_t s) {
    httplib::default_socket_options(s);
    listen_fd = static_cast<int>(s);
  });
  server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (listen_fd >= 0) ::listen(listen_fd, 1024);  // Linux: re-listen raises the backlog
  server_.set_socket_options(httplib::default_socket_options);  // drop the capture of listen_fd
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

ScriptedTeacher::~ScriptedTeacher() {
  server_.stop();
  thread_.join();
}

std::vector<ScriptedTeacher::Logged> ScriptedTeacher::log() {
  std::lock_guard<std::mutex> lk(mu_);
  return log_;
}

void ScriptedTeacher::set_before_answer(std::function<bool(int)> hook) {
  std::lock_guard<std::mutex> lk(mu_);
  hook_ = std::move(hook);
}

std::map<std::string, int> ScriptedTeacher::answered_counts() {
  std::lock_guard<std::mutex> lk(mu_);
  std::map<std::string, int> m;
  for (const auto& l : log_)
    if (l.status == 200) ++m[l.body];
  return m;
}

void ScriptedTeacher::handle(const httplib::Request& req, httplib::Response& res) {
  if (latency_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(latency_ms_));
  const json body = json::parse(req.body, nullptr, false);
  const json& msgs = body["messages"];
  const std::string last = msgs.back()["content"].get<std::string>();
  std::string kind = "respond", reply;
  if (last.find("[The Start of Assistant 1's Answer]") != std::string::npos) {
    kind = "judge";
    const std::string a = trim_nl(between(last, "[The Start of Assistant 1's Answer]", "[The End of Assistant 1's Answer]"));
    const std::string b = trim_nl(between(last, "[The Start of Assistant 2's Answer]", "[The End of Assistant 2's Answer]"));
    if (noise_) reply = std::to_string(noise_quality(a)) + " " + std::to_string(noise_quality(b));
    else if (a.find("NOPARSE") != std::string::npos || b.find("NOPARSE") != std::string::npos) reply = "I cannot decide.";
    else reply = fmt(std::min(10.0, quality(a) + bias_)) + " " + fmt(quality(b)) + "\nBoth answers were read.";
  } else if (last.find("[The Start of Non-Preferred Response]") != std::string::npos) {
    kind = "refine";
    const std::string rej = trim_nl(between(last, "[The Start of Non-Preferred Response]", "[The End of Non-Preferred Response]"));
    const std::string edit = noise_ ? remove_marks(rej, (noise_marks(rej) + 1) / 2) : rej + " good good";
    reply = "<Start of Reasoning>It lacks goodness.<End of Reasoning>\n<Start of Modified Response>\n" + edit +
            "\n<End of Modified Response>";
  } else if (msgs.size() == 3 && msgs[1]["role"] == "assistant") {
    kind = "rescore";
    const std::string mod = trim_nl(between(msgs[1]["content"].get<std::string>(), "<Start of Modified Response>",
                                            "<End of Modified Response>"));
    reply = std::to_string(noise_ ? noise_quality(mod) : quality(mod));
  } else {
    reply = "teacher says good good good";
    if (noise_) {
      auto it = answers_.find(last);
      reply = it != answers_.end() ? it->second : "I do not know.";
    }
  }
  std::string fault;
  for (const char* m : {"RATELIMIT", "FAIL5XX", "SLOWREPLY", "MALFORMED", "BADREQUEST"})
    if (req.body.find(m) != std::string::npos) fault = m;
  int attempt = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!fault.empty()) attempt = attempts_[fault + req.body]++;
    if (hook_ && hook_(answered_)) {
      log_.push_back({req.body, 0, kind});
      res.status = 503;
      return;
    }
  }
  int status = 200;
  std::string out;
  if (fault == "RATELIMIT" && attempt == 0) {
    status = 429;
    res.set_header("Retry-After", "1");
    out = R"({"error":{"message":"slow down","type":"rate_limit"}})";
  } else if (fault == "FAIL5XX" && attempt < 2) {
    status = 500;
    out = R"({"error":{"message":"internal hiccup"}})";
  } else if (fault == "BADREQUEST") {
    status = 400;
    out = R"({"error":{"message":"context too long for this scripted teacher","type":"invalid_request_error"}})";
  } else if (fault == "MALFORMED" && attempt == 0) {
    out = "<html>proxy error</html>";
  } else {
    if (fault == "SLOWREPLY" && attempt == 0) std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
    out = json{{"id", "x"},
               {"object", "chat.completion"},
               {"model", body["model"]},
               {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", reply}}}, {"finish_reason", "stop"}}}},
               {"usage", {{"prompt_tokens", static_cast<int>(req.body.size() / 4)},
                          {"completion_tokens", static_cast<int>(reply.size() / 4)}}}}
              .dump();
  }
  res.status = status;
  res.set_content(out, "application/json");
  std::lock_guard<std::mutex> lk(mu_);
  // a malformed 200 is logged as 0: not an answer the client could use
  log_.push_back({req.body, status == 200 && out[0] != '{' ? 0 : status, kind});
  if (status == 200 && out[0] == '{') ++answered_;
}

}  // namespace rmkit::distill::testing
