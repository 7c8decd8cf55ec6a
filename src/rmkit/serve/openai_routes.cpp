// OpenAI-compatible generation: POST /v1/completions and POST /v1/chat/completions, with
// server-sent-event streaming (chat.completion.chunk / text_completion chunks, `data: [DONE]`,
// stream_options.include_usage). Parameters are checked strictly: an unknown parameter, or a known
// OpenAI one rmkit does not implement, is a 400 naming it.
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <set>

#include "rmkit/serve/request.h"
#include "rmkit/serve/routes.h"

namespace rmkit::serve {
namespace {

using Clock = std::chrono::steady_clock;

const std::set<std::string> kUnsupported = {"tools", "tool_choice", "functions", "function_call", "response_format",
                                            "logit_bias", "parallel_tool_calls", "audio", "modalities", "prediction",
                                            "store", "metadata", "reasoning_effort", "service_tier",
                                            "web_search_options", "suffix", "best_of", "guided_json", "guided_regex"};

double num(const json& body, const char* key, double def) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return def;
  if (!it->is_number()) throw HttpError::bad_request(std::string(key) + ": expected a number, got " + type_name(*it), key);
  return it->get<double>();
}

int64_t integer(const json& body, const char* key, int64_t def) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return def;
  if (!it->is_number_integer() && !it->is_number_unsigned())
    throw HttpError::bad_request(std::string(key) + ": expected an integer, got " + type_name(*it), key);
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw HttpError::bad_request(std::string(key) + ": out of range", key);
  return it->get<int64_t>();
}

// Token ids of `field` as int32 within the vocabulary (400 naming the field otherwise), checked
// before any narrowing or decoding: an id of 2^32 + 1 must not become 1.
std::vector<int32_t> vocab_ids(const json& j, const std::string& field, int64_t vocab) {
  std::vector<int32_t> out;
  for (int64_t id : parse_ids(j, field)) {
    if (id < 0 || id >= vocab)
      throw HttpError::bad_request(field + ": token id " + std::to_string(id) + " outside the vocabulary [0, " +
                                       std::to_string(vocab) + ")",
                                   field);
    out.push_back(static_cast<int32_t>(id));
  }
  return out;
}

SamplingParams parse_params(const json& body, bool chat, int64_t default_max_tokens, int64_t vocab) {
  const std::set<std::string> common = {"model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "seed",
                                        "stop", "presence_penalty", "frequency_penalty", "repetition_penalty",
                                        "logprobs", "stream", "stream_options", "user", "ignore_eos", "stop_token_ids"};
  for (const auto& [k, v] : body.items()) {
    if (common.count(k)) continue;
    if (chat && (k == "messages" || k == "max_completion_tokens" || k == "top_logprobs")) continue;
    if (!chat && (k == "prompt" || k == "echo")) continue;
    if (kUnsupported.count(k))
      throw HttpError::bad_request("parameter '" + k + "' is not supported by rmkit serve", k);
    throw HttpError::bad_request("unknown parameter '" + quote_input(k, 100) + "'", k);
  }
  SamplingParams p;
  p.max_tokens = integer(body, "max_tokens", default_max_tokens);
  if (chat) p.max_tokens = integer(body, "max_completion_tokens", p.max_tokens);
  auto given = [&](const char* k) { return body.contains(k) && !body[k].is_null(); };
  p.max_tokens_default = chat && !given("max_tokens") && !given("max_completion_tokens");
  p.temperature = num(body, "temperature", 1.0);
  p.top_p = num(body, "top_p", 1.0);
  p.top_k = integer(body, "top_k", 0);
  if (p.top_k == -1) p.top_k = 0;
  p.min_p = num(body, "min_p", 0.0);
  p.n = integer(body, "n", 1);
  if (body.contains("seed") && !body["seed"].is_null()) {
    const int64_t s = integer(body, "seed", 0);
    p.seed = static_cast<uint64_t>(s);
  }
  p.presence_penalty = num(body, "presence_penalty", 0.0);
  p.frequency_penalty = num(body, "frequency_penalty", 0.0);
  p.repetition_penalty = num(body, "repetition_penalty", 1.0);
  p.ignore_eos = opt_bool(body, "ignore_eos").value_or(false);
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) p.stop = {it->get<std::string>()};
    else if (it->is_array()) {
      for (const auto& s : *it) {
        if (!s.is_string()) throw HttpError::bad_request("stop: expected a string or a list of strings", "stop");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      throw HttpError::bad_request("stop: expected a string or a list of strings, got " + type_name(*it), "stop");
    }
  }
  if (auto it = body.find("stop_token_ids"); it != body.end() && !it->is_null())
    p.stop_ids = vocab_ids(*it, "stop_token_ids", vocab);
  if (chat) {
    const bool lp = opt_bool(body, "logprobs").value_or(false);
    const int64_t top = integer(body, "top_logprobs", 0);
    if (top < 0 || top > 20) throw HttpError::bad_request("top_logprobs: must be in [0, 20]", "top_logprobs");
    if (top > 0 && !lp) throw HttpError::bad_request("top_logprobs: needs logprobs: true", "top_logprobs");
    p.logprobs = lp ? top : -1;
  } else {
    const int64_t lp = integer(body, "logprobs", -1);
    if (lp < -1 || lp > 20) throw HttpError::bad_request("logprobs: must be in [0, 20]", "logprobs");
    p.logprobs = lp;
  }
  return p;
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// The text each token adds to the output, as the output's own text has it: the decode of a short
// window of the tokens before it, with and without the token. Decoding a token alone is not that
// text: SentencePiece drops the leading space of the first piece ("▁time" -> "time" where the text
// has " time"). Special tokens show as their piece and add no text (the output text skips them).
class TokenTexts {
 public:
  TokenTexts(const LmSlot& lm, const std::vector<int32_t>& before) : lm_(lm) {
    for (size_t i = before.size() > kWindow ? before.size() - kWindow : 0; i < before.size(); ++i) window_.push_back(before[i]);
    window_text_ = lm_.tokenizer().decode(window_, false);
  }
  bool special(int32_t id) const { return lm_.tokenizer().is_special(id); }
  // The text `id` would add after the tokens pushed so far.
  std::string text_of(int32_t id) const {
    if (special(id)) return lm_.token_text(id);
    std::vector<int32_t> w = window_;
    w.push_back(id);
    const std::string with = lm_.tokenizer().decode(w, false);
    if (with.compare(0, window_text_.size(), window_text_) == 0) return with.substr(window_text_.size());
    return lm_.token_text(id);  // a window that ends inside a UTF-8 character: the token's own text
  }
  void push(int32_t id) {
    window_.push_back(id);
    if (window_.size() > kWindow) window_.erase(window_.begin());
    window_text_ = lm_.tokenizer().decode(window_, false);
  }

 private:
  static constexpr size_t kWindow = 6;
  const LmSlot& lm_;
  std::vector<int32_t> window_;
  std::string window_text_;
};

json chat_logprobs(TokenTexts& texts, const std::vector<TokenLogprob>& lps) {
  json content = json::array();
  for (const auto& t : lps) {
    json top = json::array();
    for (const auto& [id, lp] : t.top) {
      const std::string s = texts.text_of(id);
      top.push_back({{"token", s}, {"logprob", lp}, {"bytes", bytes_of(s)}});
    }
    const std::string s = texts.text_of(t.id);
    content.push_back({{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}, {"top_logprobs", top}});
    texts.push(t.id);
  }
  return {{"content", content}};
}

// Legacy completions log-probs; *offset is where the text of the first token starts in the
// choice's text, and advances past every token (special tokens add no text).
json completion_logprobs(TokenTexts& texts, const std::vector<int32_t>& ids, const std::vector<const TokenLogprob*>& lps,
                         size_t* offset) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string s = texts.text_of(ids[i]);
    tokens.push_back(s);
    offsets.push_back(*offset);
    if (!texts.special(ids[i])) *offset += s.size();
    if (!lps[i]) {
      token_lps.push_back(nullptr);
      tops.push_back(nullptr);
    } else {
      token_lps.push_back(lps[i]->logprob);
      json top = json::object();
      for (const auto& [id, lp] : lps[i]->top) top[texts.text_of(id)] = lp;
      tops.push_back(top);
    }
    texts.push(ids[i]);
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

std::string sse(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

struct Job {
  std::vector<int32_t> prompt;
  std::string prompt_text;  // echo
  std::shared_ptr<GenHandle> h;
};

void handle_generation(Server& s, const httplib::Request& req, httplib::Response& res, bool chat, json& out) {
  json body = parse_body(req.body);
  auto& slot = Routes::slot_for(s, body, /*reward=*/false);
  LmSlot& lm = *slot.lm;
  // ids the model has and the tokenizer can decode (a padded embedding can be larger)
  const int64_t vocab = std::min<int64_t>(lm.engine().vocab_size(), lm.tokenizer().vocab_size());
  const auto& cfg = Routes::config(s);
  std::vector<Job> jobs;
  bool echo = false;
  if (chat) {
    if (!body.contains("messages")) throw HttpError::bad_request("messages: required", "messages");
    text::Conversation conv = parse_messages(body["messages"], "messages");
    if (conv.empty()) throw HttpError::bad_request("messages: at least one message is required", "messages");
    jobs.push_back({lm.encode_chat(conv), "", nullptr});
  } else {
    if (!body.contains("prompt")) throw HttpError::bad_request("prompt: required", "prompt");
    const json& pr = body["prompt"];
    echo = opt_bool(body, "echo").value_or(false);
    if (pr.is_string()) jobs.push_back({lm.encode_prompt(pr.get<std::string>()), pr.get<std::string>(), nullptr});
    else if (is_token_ids(pr)) {
      jobs.push_back({vocab_ids(pr, "prompt", vocab), "", nullptr});
    } else if (pr.is_array()) {
      check_input_count(pr.size(), cfg.max_inputs, "prompt");
      for (size_t i = 0; i < pr.size(); ++i) {
        const std::string f = "prompt[" + std::to_string(i) + "]";
        if (pr[i].is_string()) jobs.push_back({lm.encode_prompt(pr[i].get<std::string>()), pr[i].get<std::string>(), nullptr});
        else {
          jobs.push_back({vocab_ids(pr[i], f, vocab), "", nullptr});
        }
      }
    } else {
      throw HttpError::bad_request("prompt: expected a string, a list of strings or token ids, got " + type_name(pr), "prompt");
    }
    for (auto& j : jobs)
      if (j.prompt_text.empty()) j.prompt_text = lm.tokenizer().decode(j.prompt, true);
  }
  const int64_t ctx = lm.engine().context_length();
  SamplingParams p = parse_params(body, chat, chat ? ctx : 16, vocab);
  if (echo && p.logprobs >= 0) p.prompt_logprobs = true;
  const bool stream = opt_bool(body, "stream").value_or(false);
  bool include_usage = false;
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!stream) throw HttpError::bad_request("stream_options: only allowed with stream: true", "stream_options");
    if (!it->is_object()) throw HttpError::bad_request("stream_options: expected an object", "stream_options");
    check_keys(*it, {"include_usage", "continuous_usage_stats"}, "stream_options");
    include_usage = opt_bool(*it, "include_usage", "stream_options").value_or(false);
  }
  if (static_cast<int64_t>(jobs.size()) * p.n > cfg.max_inputs)
    throw HttpError::too_large("prompts x n = " + std::to_string(jobs.size() * p.n) + " sequences, more than the limit " +
                                   std::to_string(cfg.max_inputs) + " (--max-inputs)",
                               "n");
  // this request holds an HTTP thread until its last token (non-stream: the wait below; stream: the
  // content provider, which owns the place): counted with the scoring requests, 503 past the limit
  const auto place = Routes::acquire_inflight(s);
  for (auto& j : jobs) {
    try {
      j.h = lm.engine().submit(j.prompt, p, stream);
    } catch (...) {
      for (auto& k : jobs)
        if (k.h) k.h->cancel();
      throw;
    }
  }
  const std::string id = request_id(chat ? "chatcmpl" : "cmpl");
  const int64_t created = Routes::created(s);
  const std::string model = slot.name;
  const double timeout = cfg.request_timeout_s;
  int64_t prompt_tokens = 0;
  for (const auto& j : jobs) prompt_tokens += static_cast<int64_t>(j.prompt.size());

  if (!stream) {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
    for (auto& j : jobs)
      if (!j.h->wait(deadline)) {
        for (auto& k : jobs) k.h->cancel();
        throw HttpError::timeout("generation timed out after " + std::to_string(timeout) + " s (--request-timeout)");
      }
    json choices = json::array();
    int64_t completion_tokens = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      auto& h = *jobs[i].h;
      if (const std::string e = h.error(); !e.empty()) throw HttpError::internal(e);
      for (size_t k = 0; k < h.results.size(); ++k) {
        const Completion& c = h.results[k];
        completion_tokens += static_cast<int64_t>(c.tokens.size());
        json choice = {{"index", i * static_cast<size_t>(p.n) + k}, {"finish_reason", c.finish_reason}};
        if (chat) {
          choice["message"] = {{"role", "assistant"}, {"content", c.text}};
          if (p.logprobs >= 0) {
            TokenTexts texts(lm, jobs[i].prompt);
            choice["logprobs"] = chat_logprobs(texts, c.logprobs);
          } else {
            choice["logprobs"] = nullptr;
          }
        } else {
          choice["text"] = echo ? jobs[i].prompt_text + c.text : c.text;
          if (p.logprobs >= 0) {
            std::vector<int32_t> ids;
            std::vector<const TokenLogprob*> lps;
            if (echo) {
              ids = jobs[i].prompt;
              lps.push_back(nullptr);
              for (const auto& t : h.prompt_logprobs) lps.push_back(&t);
              lps.resize(ids.size(), nullptr);
            }
            for (size_t t = 0; t < c.logprobs.size(); ++t) {
              ids.push_back(c.logprobs[t].id);
              lps.push_back(&c.logprobs[t]);
            }
            // echo: the tokens start at the prompt's first; else after the prompt
            TokenTexts texts(lm, echo ? std::vector<int32_t>{} : jobs[i].prompt);
            size_t offset = 0;
            choice["logprobs"] = completion_logprobs(texts, ids, lps, &offset);
          } else {
            choice["logprobs"] = nullptr;
          }
        }
        choices.push_back(choice);
      }
    }
    out = {{"id", id},
           {"object", chat ? "chat.completion" : "text_completion"},
           {"created", created},
           {"model", model},
           {"system_fingerprint", nullptr},
           {"choices", choices},
           {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                      {"total_tokens", prompt_tokens + completion_tokens}}}};
    return;
  }

  // streaming: events of every job, each chunk carrying one choice's delta
  auto state = std::make_shared<std::vector<Job>>(std::move(jobs));
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state, p, chat, echo, id, created, model, include_usage, timeout, prompt_tokens, &lm, place](size_t, httplib::DataSink& sink) {
        auto cancel_all = [&] {
          for (auto& j : *state) j.h->cancel();
        };
        auto send = [&](const std::string& data) {
          if (!sink.is_writable() || !sink.write(data.data(), data.size())) {
            cancel_all();
            return false;
          }
          return true;
        };
        auto chunk = [&](json choice) {
          json c = {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                    {"model", model}, {"choices", json::array({choice})}};
          if (include_usage) c["usage"] = nullptr;
          return send(sse(c));
        };
        const size_t n = static_cast<size_t>(p.n);
        int64_t completion_tokens = 0;
        if (chat)
          for (size_t k = 0; k < n; ++k)
            if (!chunk({{"index", k}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                        {"finish_reason", nullptr}}))
              return false;
        if (echo)
          for (size_t i = 0; i < state->size(); ++i)
            for (size_t k = 0; k < n; ++k)
              if (!chunk({{"index", i * n + k}, {"text", (*state)[i].prompt_text}, {"logprobs", nullptr}, {"finish_reason", nullptr}}))
                return false;
        // per choice: the token-text window and (completions) where the next token's text starts
        std::vector<TokenTexts> texts;
        std::vector<size_t> offsets;
        for (size_t i = 0; i < state->size(); ++i)
          for (size_t k = 0; k < n; ++k) {
            texts.emplace_back(lm, (*state)[i].prompt);
            offsets.push_back(echo ? (*state)[i].prompt_text.size() : 0);
          }
        std::vector<bool> open(state->size(), true);
        size_t remaining = state->size();
        auto last_event = Clock::now();
        while (remaining > 0) {
          bool any = false;
          for (size_t i = 0; i < state->size(); ++i) {
            if (!open[i]) continue;
            GenEvent ev;
            const auto wait = state->size() == 1 ? std::chrono::milliseconds(200) : std::chrono::milliseconds(2);
            while ((*state)[i].h->next_event(&ev, Clock::now() + wait)) {
              any = true;
              completion_tokens += static_cast<int64_t>(ev.ids.size());
              json choice = {{"index", i * n + static_cast<size_t>(ev.index)},
                             {"finish_reason", ev.finished ? json(ev.finish_reason) : json(nullptr)}};
              if (chat) {
                choice["delta"] = ev.text.empty() && ev.finished ? json::object() : json{{"content", ev.text}};
                const size_t c = i * n + static_cast<size_t>(ev.index);
                choice["logprobs"] = p.logprobs >= 0 && !ev.logprobs.empty() ? chat_logprobs(texts[c], ev.logprobs) : json(nullptr);
              } else {
                choice["text"] = ev.text;
                std::vector<const TokenLogprob*> lps;
                for (const auto& t : ev.logprobs) lps.push_back(&t);
                const size_t c = i * n + static_cast<size_t>(ev.index);
                choice["logprobs"] = p.logprobs >= 0 && !ev.logprobs.empty()
                                         ? completion_logprobs(texts[c], ev.ids, lps, &offsets[c])
                                         : json(nullptr);
              }
              if (!chunk(choice)) return false;
            }
            if (const std::string e = (*state)[i].h->error(); !e.empty()) {
              send(sse({{"error", {{"code", 500}, {"type", "internal_error"}, {"message", e}, {"param", nullptr}}}}));
              cancel_all();
              sink.done();
              return true;
            }
            if ((*state)[i].h->drained()) {  // finished by the engine and every event sent
              open[i] = false;
              --remaining;
            }
          }
          if (any) last_event = Clock::now();
          else if (std::chrono::duration<double>(Clock::now() - last_event).count() > timeout) {
            cancel_all();
            send(sse({{"error", {{"code", 504}, {"type", "timeout_error"}, {"message", "generation timed out"}}}}));
            sink.done();
            return true;
          }
        }
        if (include_usage) {
          json u = {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                    {"model", model}, {"choices", json::array()},
                    {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                               {"total_tokens", prompt_tokens + completion_tokens}}}};
          if (!send(sse(u))) return false;
        }
        if (!send("data: [DONE]\n\n")) return false;
        sink.done();
        return true;
      },
      [state](bool success) {
        if (!success)
          for (auto& j : *state) j.h->cancel();
      });
  out = nullptr;
}

}  // namespace

void Routes::add_openai(Server& s) {
  for (const bool chat : {true, false}) {
    route(s, "POST", chat ? "/v1/chat/completions" : "/v1/completions",
          [&s, chat](const httplib::Request& req, httplib::Response& res) {
            json out;
            handle_generation(s, req, res, chat, out);
            return out;
          });
  }
}

}  // namespace rmkit::serve
