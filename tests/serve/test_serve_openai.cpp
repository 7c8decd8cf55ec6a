// The OpenAI-compatible routes: byte-equal to `rmkit generate`, shapes of the OpenAI API
// reference (plain and streamed), strict parameters, chat rendering, disconnects and floods.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "rmkit/core/file_io.h"
#include "rmkit/text/chat_template.h"
#include "serve_fixture.h"

namespace rmkit::serve::testing {
namespace {

const std::string kBin = "models/stories260K/stories260K.bin", kTok = "models/stories260K/tok512.model";


ServerConfig lm_config() {
  ServerConfig c = base_config();
  c.models = {{"lm", rmkit::testing::asset(kBin)}};
  c.slot.tokenizer = rmkit::testing::asset(kTok);
  c.slot.max_length = 0;
  return c;
}

// The SSE events of a streamed answer: each "data: X" payload, "[DONE]" included.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> ev;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    size_t end = body.find("\n\n", at);
    ev.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return ev;
}

TEST(ServeOpenAI, CompletionsEqualRmkitGenerateByteForByte) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  auto r = rmkit::testing::run_rmkit("generate --model " + rmkit::testing::asset(kBin) + " --tokenizer " +
                                     rmkit::testing::asset(kTok) + " --prompt 'Once upon a time' --max-new-tokens 60");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunningServer srv(lm_config());
  auto cli = srv.client();
  Reply c = post(cli, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 60}, {"temperature", 0}});
  ASSERT_EQ(c.status, 200) << c.raw;
  std::string text = c.body["choices"][0]["text"];
  EXPECT_EQ(r.out, text.empty() || text.back() != '\n' ? text + "\n" : text);
  auto s = cli.Post("/v1/completions",
                    json{{"prompt", "Once upon a time"}, {"max_tokens", 60}, {"temperature", 0}, {"stream", true}}.dump(),
                    "application/json");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->get_header_value("Content-Type"), "text/event-stream");
  auto ev = sse_events(s->body);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string streamed;
  for (size_t i = 0; i + 1 < ev.size(); ++i) streamed += json::parse(ev[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(streamed, text);
}

TEST(ServeOpenAI, ShapesFollowTheApiReference) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  RunningServer srv(lm_config());
  auto cli = srv.client();
  for (const char* name : {"openai_chat.json", "openai_completions.json"}) {
    json f = fixture(name);
    const bool chat = std::string(name) == "openai_chat.json";
    Reply r = post(cli, chat ? "/v1/chat/completions" : "/v1/completions", f["request"]);
    ASSERT_EQ(r.status, 200) << r.raw;
    if (!chat) {  // legacy top_logprobs: {token text: logprob} objects, keys vary by token
      for (const auto& top : r.body["choices"][0]["logprobs"]["top_logprobs"]) {
        EXPECT_EQ(top.size(), 2u);
        for (auto& [k, v] : top.items()) EXPECT_TRUE(v.is_number()) << k;
      }
      r.body["choices"][0]["logprobs"]["top_logprobs"] = f["response"]["choices"][0]["logprobs"]["top_logprobs"];
    }
    EXPECT_EQ(shape_diff(f["response"], r.body), "") << name << ": " << r.raw;
    EXPECT_EQ(r.body["choices"][0]["finish_reason"], "length");
    const int64_t n_out = r.body["usage"]["completion_tokens"];
    EXPECT_EQ(n_out, f["request"]["max_tokens"].get<int64_t>());
    EXPECT_EQ(r.body["usage"]["total_tokens"].get<int64_t>(), r.body["usage"]["prompt_tokens"].get<int64_t>() + n_out);
  }
  // chat: the plain template's rendering with one BOS (no second one)
  {
    Reply r = post(cli, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}}, {"max_tokens", 1}});
    auto tok = text::load_tokenizer(rmkit::testing::asset(kTok));
    auto ids = tok->encode(text::ChatTemplate::named("plain").render({{"user", "Tell me a story."}}, true), false, true);
    if (ids.empty() || ids.front() != tok->bos_id()) ids.insert(ids.begin(), tok->bos_id());
    EXPECT_EQ(r.body["usage"]["prompt_tokens"].get<size_t>(), ids.size());
  }
  for (const char* name : {"openai_chat_stream.json", "openai_completions_stream.json"}) {
    json f = fixture(name);
    const bool chat = std::string(name) == "openai_chat_stream.json";
    auto s = cli.Post(chat ? "/v1/chat/completions" : "/v1/completions", f["request"].dump(), "application/json");
    ASSERT_TRUE(s);
    auto ev = sse_events(s->body);
    ASSERT_GE(ev.size(), 3u) << s->body;
    EXPECT_EQ(ev.back(), "[DONE]");
    size_t content_chunks = 0, finished = 0;
    for (size_t i = 0; i + 1 < ev.size(); ++i) {
      json c = json::parse(ev[i]);
      if (chat && c["choices"].empty()) {  // the usage chunk (include_usage)
        EXPECT_EQ(shape_diff(f["usage_chunk"], c), "") << ev[i];
        EXPECT_EQ(i + 2, ev.size()) << "usage must be the last chunk";
        EXPECT_EQ(c["usage"]["completion_tokens"], 10);
        continue;
      }
      json want = f["chunk"];
      if (chat) {  // delta: {role, content} first, {content} then, {} at the end
        const auto& d = c["choices"][0]["delta"];
        for (auto& [k, v] : d.items()) EXPECT_TRUE(k == "role" || k == "content") << k;
        want["choices"][0]["delta"] = d;
      }
      if (!c["choices"][0]["finish_reason"].is_null()) {
        ++finished;
        want["choices"][0]["finish_reason"] = "length";
      }
      EXPECT_EQ(shape_diff(want, c), "") << ev[i];
      ++content_chunks;
    }
    EXPECT_EQ(finished, 1u);
    EXPECT_GE(content_chunks, 3u);
  }
}

TEST(ServeOpenAI, ParametersAreCheckedStrictly) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  auto cfg = lm_config();
  cfg.api_keys = {"secret"};
  RunningServer srv(cfg);
  auto cli = srv.client();
  const json base = {{"prompt", "Once"}, {"max_tokens", 2}};
  EXPECT_EQ(post(cli, "/v1/completions", base).status, 401);
  EXPECT_EQ(post(cli, "/v1/completions", base, "secret").status, 200);
  struct Case {
    json patch;
    std::string param;
  };
  const std::vector<Case> cases = {{{{"foo", 1}}, "foo"},
                                   {{{"tools", json::array()}}, "tools"},
                                   {{{"temperature", "hot"}}, "temperature"},
                                   {{{"n", 0}}, "n"},
                                   {{{"top_p", 0}}, "top_p"},
                                   {{{"stop", 5}}, "stop"},
                                   {{{"logprobs", 50}}, "logprobs"},
                                   {{{"stream_options", {{"include_usage", true}}}}, "stream_options"},
                                   // token ids outside the vocabulary (512), checked before narrowing to int32
                                   {{{"prompt", {100000}}}, "prompt"},
                                   {{{"prompt", {-1}}}, "prompt"},
                                   {{{"prompt", {uint64_t{4294967297}, 5}}}, "prompt"},
                                   {{{"prompt", {{5, 6}, {512}}}}, "prompt[1]"},
                                   {{{"stop_token_ids", {uint64_t{4294967296}}}}, "stop_token_ids"}};
  for (const auto& c : cases) {
    json b = base;
    b.update(c.patch);
    Reply r = post(cli, "/v1/completions", b, "secret");
    EXPECT_EQ(r.status, 400) << b.dump() << " -> " << r.raw;
    EXPECT_EQ(r.body["error"]["param"], c.param) << r.raw;
    EXPECT_EQ(r.raw.find("/work"), std::string::npos) << r.raw;  // no server path
    EXPECT_EQ(r.raw.find(".model"), std::string::npos) << r.raw;
  }
  Reply unsupported = post(cli, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"tools", json::array()}}, "secret");
  EXPECT_NE(unsupported.body["error"]["message"].get<std::string>().find("not supported"), std::string::npos);
  // a reward-model route on a causal LM names the right route
  Reply wrong = post(cli, "/v1/score", {{"inputs", {{{"text", "a"}}}}}, "secret");
  EXPECT_EQ(wrong.status, 404) << wrong.raw;  // no reward model is served here
}

// Generation holds an HTTP thread until its last token, so it takes one of the places that keep 4
// threads free: past them it gets 503 + Retry-After at once, and /health answers throughout
// (before, 48 long generations on 8 threads queued /health behind them for seconds).
// Log-prob token strings are the pieces of the choice's own text: SentencePiece tokens keep their
// leading space ("a" was reported for " a"), the non-special tokens concatenate to the text, and
// text_offset points at each token's text, echo and streamed chunks included.
TEST(ServeOpenAI, LogprobTokensAreThePiecesOfTheText) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  RunningServer srv(lm_config());
  auto cli = srv.client();
  auto check_pieces = [](const json& lp, const std::string& text, size_t skip_specials_from = 0) {
    std::string joined;
    ASSERT_EQ(lp["tokens"].size(), lp["text_offset"].size());
    for (size_t i = 0; i < lp["tokens"].size(); ++i) {
      const std::string t = lp["tokens"][i].get<std::string>();
      const size_t off = lp["text_offset"][i].get<size_t>();
      if (i < skip_specials_from) continue;
      EXPECT_EQ(off, joined.size()) << "token " << i;
      EXPECT_EQ(text.substr(off, t.size()), t) << "token " << i;
      joined += t;
    }
    EXPECT_EQ(joined, text);
  };
  const json base = {{"prompt", "Once upon"}, {"max_tokens", 12}, {"temperature", 0}, {"logprobs", 2}};
  Reply r = post(cli, "/v1/completions", base);
  ASSERT_EQ(r.status, 200) << r.raw;
  const std::string text = r.body["choices"][0]["text"].get<std::string>();
  ASSERT_EQ(text[0], ' ');  // the continuation starts with a space ...
  EXPECT_EQ(r.body["choices"][0]["logprobs"]["tokens"][0].get<std::string>()[0], ' ');  // ... and so does its token
  check_pieces(r.body["choices"][0]["logprobs"], text);
  // echo: BOS shows as a token of its own that takes no text; the rest is "Once upon" + text
  json e = base;
  e["echo"] = true;
  Reply er = post(cli, "/v1/completions", e);
  ASSERT_EQ(er.status, 200) << er.raw;
  const json& elp = er.body["choices"][0]["logprobs"];
  EXPECT_EQ(elp["text_offset"][0], 0);
  EXPECT_EQ(elp["text_offset"][1], 0);  // the token after BOS starts the text
  check_pieces(elp, er.body["choices"][0]["text"].get<std::string>(), 1);
  // streamed: offsets run on across chunks
  json st = base;
  st["stream"] = true;
  auto sr = cli.Post("/v1/completions", st.dump(), "application/json");
  ASSERT_TRUE(sr && sr->status == 200);
  json merged = {{"tokens", json::array()}, {"text_offset", json::array()}};
  std::string streamed;
  for (const auto& ev : sse_events(sr->body)) {
    if (ev == "[DONE]") continue;
    const json c = json::parse(ev)["choices"][0];
    streamed += c["text"].get<std::string>();
    if (c["logprobs"].is_null()) continue;
    for (const auto& t : c["logprobs"]["tokens"]) merged["tokens"].push_back(t);
    for (const auto& o : c["logprobs"]["text_offset"]) merged["text_offset"].push_back(o);
  }
  EXPECT_EQ(streamed, text);
  check_pieces(merged, streamed);
  // chat: the content's tokens concatenate to the message
  Reply ch = post(cli, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}},
                                                {"max_tokens", 12}, {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 2}});
  ASSERT_EQ(ch.status, 200) << ch.raw;
  std::string joined;
  for (const auto& t : ch.body["choices"][0]["logprobs"]["content"]) {
    joined += t["token"].get<std::string>();
    EXPECT_EQ(t["bytes"].size(), t["token"].get<std::string>().size());
  }
  EXPECT_EQ(joined, ch.body["choices"][0]["message"]["content"].get<std::string>());
}

// A chat request without max_tokens means "up to the context"; when that does not fit the KV-cache
// budget for n samples, the default shrinks to what fits (OpenAI SDK calls omit max_tokens). A
// max_tokens the client sent is never shrunk: it is refused with 400 naming it.
TEST(ServeOpenAI, ChatDefaultMaxTokensFitsTheKvBudget) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  auto cfg = lm_config();
  cfg.engine.kv_cache_mb = 1;  // stories260K: 5 layers x 2 x 4 heads x 8 dims x 4 B = 1280 B per token: 819 tokens
  RunningServer srv(cfg);
  auto cli = srv.client();
  const json msgs = {{{"role", "user"}, {"content", "Tell me a story."}}};
  Reply r = post(cli, "/v1/chat/completions", {{"messages", msgs}, {"n", 2}, {"temperature", 0}, {"ignore_eos", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const int64_t prompt = r.body["usage"]["prompt_tokens"].get<int64_t>();
  const int64_t fits = (1024 * 1024 / 1280 - prompt) / 2;
  ASSERT_GT(prompt + 2 * (512 - prompt), 1024 * 1024 / 1280);  // the context default would not fit ...
  EXPECT_EQ(r.body["usage"]["completion_tokens"].get<int64_t>(), 2 * fits);  // ... so each sample gets what fits
  for (const auto& c : r.body["choices"]) EXPECT_EQ(c["finish_reason"], "length");
  Reply sent = post(cli, "/v1/chat/completions", {{"messages", msgs}, {"n", 2}, {"max_tokens", 500}});
  EXPECT_EQ(sent.status, 400) << sent.raw;
  EXPECT_EQ(sent.body["error"]["param"], "max_tokens");
}

TEST(ServeOpenAI, GenerationTakesAPlaceSoHealthAlwaysAnswers) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  auto cfg = lm_config();
  cfg.http_threads = 8;  // 4 places
  RunningServer srv(cfg);
  std::atomic<int> ok{0}, busy{0}, other{0}, streams_ok{0};
  std::atomic<bool> retry_after{true};
  std::vector<std::thread> ts;
  for (int i = 0; i < 48; ++i)
    ts.emplace_back([&, i] {
      auto c = srv.client();
      json b = {{"prompt", "Lily"}, {"max_tokens", 450}, {"ignore_eos", true}, {"temperature", 0}};
      if (i % 4 == 0) b["stream"] = true;
      auto r = c.Post("/v1/completions", b.dump(), "application/json");
      if (!r) return (void)++other;
      if (r->status == 200) ++ok, streams_ok += i % 4 == 0;
      else if (r->status == 503) ++busy, retry_after = retry_after && r->has_header("Retry-After");
      else ++other;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  double worst = 0;
  for (int k = 0; k < 5; ++k) {  // while the generations run
    auto c = srv.client();
    const auto t0 = std::chrono::steady_clock::now();
    auto h = c.Get("/health");
    worst = std::max(worst, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : ts) t.join();
  EXPECT_LT(worst, 1.0);  // ~3 s before, when generations held every thread
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok + busy, 48);
  EXPECT_GE(ok.load(), 4);
  EXPECT_GE(busy.load(), 1);
  EXPECT_TRUE(retry_after.load());
  // every place was given back: 4 requests at once all run
  std::vector<std::thread> again;
  std::atomic<int> ok2{0};
  for (int i = 0; i < 4; ++i)
    again.emplace_back([&] {
      auto c = srv.client();
      ok2 += post(c, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 8}}).status == 200;
    });
  for (auto& t : again) t.join();
  EXPECT_EQ(ok2.load(), 4);
}

TEST(ServeOpenAI, DisconnectMidStreamFreesTheSequenceAndFloodsRecover) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  const Labels lm = {{"model", "lm"}};
  // The abandoned stream is n = 64 samples of 450 tokens (28,800 tokens, about a second of
  // stories260K decoding here; one sample takes ~0.1 s), so it is still running when checked even
  // if this thread is descheduled for a while under a loaded ctest.
  constexpr int kN = 64, kTokens = 450;
  {
    auto cfg = lm_config();
    cfg.engine.kv_cache_mb = 64;
    RunningServer srv(cfg);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(srv.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    const std::string body = json{{"prompt", "Once upon a time"}, {"max_tokens", kTokens}, {"ignore_eos", true},
                                  {"temperature", 0.8}, {"seed", 1}, {"n", kN}, {"stream", true}}.dump();
    const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    // until the first event: the response headers alone can arrive before the engine admits the
    // request (and reserves its KV cache)
    std::string got;
    char buf[512];
    while (got.find("data: ") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      ASSERT_GT(::poll(&p, 1, 30000), 0);
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      ASSERT_GT(n, 0);
      got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_GT(srv.server->metrics().value("rmkit_kv_cache_bytes", lm), 0);
    ::close(fd);
    for (int i = 0; i < 300 && srv.server->metrics().value("rmkit_kv_cache_bytes", lm) > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(srv.server->metrics().value("rmkit_kv_cache_bytes", lm), 0) << "the abandoned stream kept its KV cache";
    EXPECT_LT(srv.server->metrics().value("rmkit_generated_tokens_total", lm), kN * (kTokens - 10))
        << "generation went on after the client left";
  }
  // a flood past --max-queue: 503s with Retry-After, then normal service
  auto cfg = lm_config();
  cfg.engine.max_queue = 2;
  cfg.engine.kv_cache_mb = 1;
  RunningServer srv(cfg);
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::vector<std::thread> th;
  for (int t = 0; t < 8; ++t)
    th.emplace_back([&] {
      auto c = srv.client();
      Reply r = post(c, "/v1/completions", {{"prompt", "Lily"}, {"max_tokens", 450}, {"ignore_eos", true}, {"temperature", 0}});
      r.status == 200 ? ++ok : r.status == 503 ? ++busy : ++other;
    });
  for (auto& t : th) t.join();
  EXPECT_GT(busy.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);
  auto cli = srv.client();
  EXPECT_EQ(post(cli, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 3}}).status, 200);
  EXPECT_EQ(srv.server->metrics().value("rmkit_kv_cache_bytes", lm), 0);
}

}  // namespace
}  // namespace rmkit::serve::testing
