// A chat client over an in-process model (`--teacher DIR`, `--policy DIR`): the generation
// engine's continuous batching serves every concurrent call, so `--concurrency` requests share
// each forward pass just as they would on `rmkit serve`.
#pragma once
#include <memory>
#include <string>

#include "rmkit/distill/chat_types.h"
#include "rmkit/serve/lm_slot.h"

namespace rmkit::distill {

class LocalChatClient : public ChatClient {
 public:
  // Loads the causal LM at `dir` (tokenizer and chat template as `rmkit serve` finds them).
  LocalChatClient(const std::string& dir, const std::string& tokenizer = "", const std::string& chat_template = "auto",
                  int64_t kv_cache_mb = 2048, double timeout_s = 600);
  ~LocalChatClient() override;
  ChatReply complete(const ChatRequest& r) override;
  std::string describe() const override { return "local " + dir_; }

 private:
  std::string dir_;
  double timeout_s_;
  std::unique_ptr<serve::LmSlot> slot_;
};

}  // namespace rmkit::distill
