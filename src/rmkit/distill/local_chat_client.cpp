#include "rmkit/distill/local_chat_client.h"

#include <chrono>

#include "rmkit/core/file_io.h"
#include "rmkit/serve/http_error.h"

namespace rmkit::distill {

LocalChatClient::LocalChatClient(const std::string& dir, const std::string& tokenizer, const std::string& chat_template,
                                 int64_t kv_cache_mb, double timeout_s)
    : dir_(dir), timeout_s_(timeout_s) {
  if (serve::is_reward_model_dir(dir)) throw UsageError(dir + ": a reward model; the teacher and policies must be causal LMs");
  serve::EngineConfig ec;
  ec.kv_cache_mb = kv_cache_mb;
  ec.max_queue = 4096;
  slot_ = std::make_unique<serve::LmSlot>(file_name(dir), dir, tokenizer, chat_template, ec, nullptr, nullptr);
}

LocalChatClient::~LocalChatClient() {
  if (slot_) slot_->engine().stop();
}

ChatReply LocalChatClient::complete(const ChatRequest& r) {
  serve::SamplingParams p;
  p.max_tokens = r.sampling.max_tokens;
  p.temperature = r.sampling.temperature;
  p.top_p = r.sampling.top_p;
  p.top_k = r.sampling.top_k;
  p.seed = r.seed;
  std::shared_ptr<serve::GenHandle> h;
  std::vector<int32_t> ids;
  try {
    ids = slot_->encode_chat(r.messages);
    h = slot_->engine().submit(ids, p);
  } catch (const serve::HttpError& e) {
    const auto kind = e.status >= 500 ? CallError::Kind::Server : CallError::Kind::Client;
    throw CallError(kind, "local " + dir_ + ": " + e.message, e.status);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s_ * 1000));
  if (!h->wait(deadline)) throw CallError(CallError::Kind::Timeout, "local " + dir_ + ": generation timed out");
  if (const std::string e = h->error(); !e.empty()) throw CallError(CallError::Kind::Server, "local " + dir_ + ": " + e, 500);
  ChatReply out;
  out.text = h->results.at(0).text;
  out.finish_reason = h->results[0].finish_reason;
  out.prompt_tokens = static_cast<int64_t>(ids.size());
  out.completion_tokens = static_cast<int64_t>(h->results[0].tokens.size());
  return out;
}

}  // namespace rmkit::distill
