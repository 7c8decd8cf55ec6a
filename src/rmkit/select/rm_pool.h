// LASeR's reward-model pool: each arm scores (prompt, responses) groups. An arm is
//   DIR                              an rmkit / HF *ForSequenceClassification reward model
//   policy=DIR,reference=DIR         a causal LM's DPO implicit reward against a reference:
//                                    Σ_t log π(y_t|x,y_<t) − Σ_t log π_ref(y_t|x,y_<t) (as `rmkit eval`)
//   policy=DIR                       reference-free: the mean response log-prob under the LM
//   http(s)://HOST[:PORT][/v1/score] a remote `rmkit serve` (or compatible) /v1/score
// given on the command line as `--rm NAME=SPEC`. Only the chosen arm runs; `tokens()` counts the
// tokens each arm's forwards computed (prompt once per group + responses), the compute LASeR saves.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rmkit/text/message.h"

namespace rmkit::select {

struct ScoreItem {
  text::Conversation prompt;
  std::vector<std::string> responses;
};

struct ArmSpec {
  std::string name;
  std::string kind;  // rm | dpo | logprob | remote
  std::string path, policy, reference, url;
  // "NAME=SPEC" (see above). Throws UsageError naming the bad part.
  static ArmSpec parse(const std::string& name_eq_spec);
  std::string describe() const;
};

struct ArmOptions {
  std::string tokenizer;             // for llama2.c .bin models
  std::string chat_template = "auto";
  int64_t max_length = 0;            // 0 = the model's context
  std::string api_key;               // remote arms (Bearer); never logged
  double timeout_s = 120;
};

class RewardArm {
 public:
  virtual ~RewardArm() = default;
  // Rewards in item order, then response order.
  virtual std::vector<double> score(const std::vector<ScoreItem>& items) = 0;
  const std::string& name() const { return name_; }
  int64_t tokens() const { return tokens_; }

 protected:
  std::string name_;
  int64_t tokens_ = 0;
};

std::unique_ptr<RewardArm> make_arm(const ArmSpec& spec, const ArmOptions& opts);

}  // namespace rmkit::select
