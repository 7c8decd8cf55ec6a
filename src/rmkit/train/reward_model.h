// Reward model = any CausalLM backbone + a scalar reward head read at the LAST NON-PAD token of
// each sequence (found from attention_mask, so left and right padding give the same reward as the
// unpadded sequence). The backbone's LM head stays usable on the same hidden states (DPO terms,
// HAF-RM and distillation need token log-probs from the same forward).
//
// Heads (HF-compatible names, written as extra tensors beside the backbone):
//   linear: score.weight [1, H] (no bias, as LlamaForSequenceClassification)
//   mlp:    score.0.weight [M, H], score.0.bias [M], ReLU, Dropout(p), score.3.weight [1, M],
//           score.3.bias [1]   (M = 1024 by default)
//   optional attribute head for the `regression` loss: score.regression.weight [k, H],
//           score.regression.bias [k]
// Init: normal(0, 1/sqrt(in+1)) per linear (biases 0), or "zero" for the output layer (HAF-RM).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/model/causal_lm.h"
#include "rmkit/text/tokenizer.h"

namespace rmkit::train {

struct HeadConfig {
  std::string type = "linear";   // linear | mlp
  std::string init = "normal";   // normal | zero
  int64_t mlp_hidden = 1024;
  double dropout = 0.1;
  int64_t num_attributes = 0;    // > 0 adds the k-dim regression head

  nlohmann::json to_json() const;
  static HeadConfig from_json(const nlohmann::json& j, const std::string& where = "rmkit.json");
  void validate() const;         // ConfigError naming the bad field
};

struct RewardOutput {
  torch::Tensor rewards;     // [B] float32
  torch::Tensor hidden;      // [B, T, H] final hidden states
  torch::Tensor last_index;  // [B] int64, position of the last non-pad token
  torch::Tensor attributes;  // [B, k] float32 when the regression head exists, else undefined
};

struct PairOutput {
  torch::Tensor chosen, rejected;  // [B] float32 rewards
  RewardOutput all;                // the joint forward over [chosen; rejected] (2B rows)
};

// Position of the last 1 in each row of mask [B, T] (0 for an all-pad row). Independent of the
// padding side.
torch::Tensor last_token_index(const torch::Tensor& mask);

// Pads two [B_i, T_i] id/mask pairs on the right to a common T and concatenates along the batch:
// returns {ids [B1+B2, T], mask [B1+B2, T]}.
std::pair<torch::Tensor, torch::Tensor> concat_right_padded(const torch::Tensor& ids_a,
                                                            const torch::Tensor& mask_a,
                                                            const torch::Tensor& ids_b,
                                                            const torch::Tensor& mask_b,
                                                            int64_t pad_id);

class RewardModelImpl : public torch::nn::Module {
 public:
  RewardModelImpl(model::CausalLMPtr backbone, HeadConfig head);

  // ids, mask: [B, T] (mask 1 = token, 0 = pad; either padding side).
  RewardOutput forward(const torch::Tensor& ids, const torch::Tensor& mask);
  // Chosen and rejected go through ONE backbone forward: both are right-padded to a common length
  // and concatenated along the batch (rows 0..B-1 chosen, B..2B-1 rejected).
  PairOutput forward_pair(const torch::Tensor& chosen_ids, const torch::Tensor& chosen_mask,
                          const torch::Tensor& rejected_ids, const torch::Tensor& rejected_mask);
  // LM head on hidden states [B, T, H] -> [B, T, V].
  torch::Tensor lm_logits(const torch::Tensor& hidden) { return backbone_->lm_logits(hidden); }
  // Reward head on pooled states [B, H] -> [B].
  torch::Tensor score(const torch::Tensor& pooled);

  model::CausalLMImpl& backbone() { return *backbone_; }
  const model::CausalLMPtr& backbone_ptr() const { return backbone_; }
  const HeadConfig& head_config() const { return head_cfg_; }

  // Head tensors under their saved names (score.*), detached CPU copies.
  model::TensorMap head_state() const;
  // Restores the head from saved tensors; ShapeError listing missing / mis-shaped names.
  void load_head_state(const model::TensorMap& tensors, const std::string& where);
  // Trainable parameters with saved names: backbone names (HF) and score.* names.
  std::vector<std::pair<std::string, torch::Tensor>> named_trainable_parameters();
  void set_backbone_trainable(bool trainable);

 private:
  void init_head();
  model::CausalLMPtr backbone_;
  HeadConfig head_cfg_;
  torch::nn::Linear linear_{nullptr};
  torch::nn::Sequential mlp_{nullptr};
  torch::nn::Linear attr_{nullptr};
};
TORCH_MODULE(RewardModel);

// Metadata written to rmkit.json beside the weights.
struct RewardModelMeta {
  nlohmann::json training_config = nlohmann::json::object();
  std::string data_hash;
  std::string chat_template;      // template name (or "custom")
  std::string base_model;
  int64_t step = 0;
  // Calibration on the validation set (servers can standardise rewards with these).
  double reward_mean = 0.0, reward_std = 1.0;
  int64_t calibration_count = 0;
  double val_accuracy = -1;

  nlohmann::json to_json(const HeadConfig& head) const;
  static RewardModelMeta from_json(const nlohmann::json& j);
};

// The HF *ForSequenceClassification architecture for a backbone config
// (LlamaForSequenceClassification, Qwen2ForSequenceClassification, GPT2ForSequenceClassification…).
std::string sequence_classification_architecture(const model::ModelConfig& cfg);

// Writes an HF reward-model directory: config.json (SequenceClassification architecture,
// num_labels 1, pad_token_id set), model.safetensors with the backbone and score.* tensors,
// tokenizer files and rmkit.json. The files are first written into a fresh sibling temp directory
// and then installed (core/dir_install.h): a directory holding only a model (best/) is swapped
// whole; one holding other files too (the run directory, with metrics.jsonl and checkpoints/, left
// alone) gets the new files with model.safetensors last. A kill -9 never leaves `dir` pairing one
// save's rmkit.json or config with another's weights.
void save_reward_model(const std::string& dir, RewardModelImpl& rm, const text::Tokenizer* tokenizer,
                       const RewardModelMeta& meta, const std::string& dtype = "float32");

struct LoadedRewardModel {
  model::ModelConfig config;
  RewardModel model{nullptr};
  std::unique_ptr<text::Tokenizer> tokenizer;
  RewardModelMeta meta;
  bool has_head = false;  // false: a plain causal LM; the head was freshly initialised
};

// Loads a directory or llama2.c .bin through load_pretrained. The head is restored from score.*
// tensors and rmkit.json when present. A model without them (a base causal LM) is refused with
// ConfigError "...: no reward head ..." unless require_head is false: then a new head of
// `fallback_head` is initialised (training starts from a base model; scoring, evaluation and
// serving keep the default). A tokenizer with more tokens than the embedding has rows is refused
// (ConfigError naming both sizes).
LoadedRewardModel load_reward_model(const std::string& path, const std::string& tokenizer_path = "",
                                    const HeadConfig& fallback_head = HeadConfig(), bool require_head = true);

// ConfigError when `tok` has ids beyond the model's embedding (vocab_size rows).
void check_tokenizer_fits(const text::Tokenizer& tok, int64_t vocab_size, const std::string& model_path);

}  // namespace rmkit::train
