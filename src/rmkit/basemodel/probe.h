// `rmkit basemodel probe`: cheap measurements of how well each candidate base model takes to reward
// modeling, with the same budget and data for every candidate:
//   - probe accuracy: a short reward-model training (train::Trainer) per learning rate of a small
//     sweep; the candidate's figure is the best validation accuracy over the sweep (its lr is
//     reported). The sweep picks on the same validation set it reports, so the figure is an
//     optimistic probe, comparable across candidates, not a held-out estimate;
//   - zero-shot implicit preference accuracy of the base LM itself: the fraction of validation pairs
//     whose chosen reply has a higher mean per-token log-probability (given the chat-templated
//     prompt) than the rejected one (ties count as wrong, as in `rmkit eval`).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rmkit/data/pairs.h"
#include "rmkit/model/causal_lm.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"

namespace rmkit::basemodel {

struct ProbeCandidate {
  std::string name, path, tokenizer;  // tokenizer "" = found beside the model
};

struct ProbeOptions {
  std::vector<std::string> data;     // training preference files
  std::vector<std::string> val;      // validation preference files
  std::vector<double> lrs = {1e-4, 3e-4, 1e-3};
  int64_t steps = 50;
  int64_t batch_size = 8;
  int64_t max_length = 256;
  size_t max_val_pairs = 0;          // 0 = all
  uint64_t seed = 42;
  std::string chat_template = "auto";
  std::string work_dir;              // per-run training outputs go under here
  bool zero_shot = true;
};

struct ProbeRun {
  double lr = 0, val_accuracy = -1, final_loss = 0, seconds = 0;
};

struct ProbeResult {
  std::string name;
  std::vector<ProbeRun> sweep;
  double best_lr = 0, probe_accuracy = -1;
  double zero_shot_accuracy = -1;
  size_t zero_shot_pairs = 0;
  double seconds = 0;
};

// Per-pair mean response log-probabilities (chosen, rejected) under a causal LM.
std::vector<std::pair<double, double>> mean_response_logprobs(model::CausalLMImpl& lm, const text::Tokenizer& tok,
                                                              const text::ChatTemplate& tmpl,
                                                              const std::vector<data::PrefPair>& pairs,
                                                              int64_t max_length, int64_t batch_size);

ProbeResult run_probe(const ProbeCandidate& c, const ProbeOptions& opts,
                      const std::function<void(const std::string&)>& log = {});

}  // namespace rmkit::basemodel
