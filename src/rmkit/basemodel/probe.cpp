#include "rmkit/basemodel/probe.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/data/encode.h"
#include "rmkit/data/readers.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/train/batch.h"
#include "rmkit/train/logprobs.h"
#include "rmkit/train/trainer.h"

namespace rmkit::basemodel {

std::vector<std::pair<double, double>> mean_response_logprobs(model::CausalLMImpl& lm, const text::Tokenizer& tok,
                                                              const text::ChatTemplate& tmpl,
                                                              const std::vector<data::PrefPair>& pairs,
                                                              int64_t max_length, int64_t batch_size) {
  auto enc = data::encode_pairs(pairs, tok, tmpl, static_cast<size_t>(max_length));
  const int64_t pad = tok.pad_id() >= 0 ? tok.pad_id() : (tok.eos_id() >= 0 ? tok.eos_id() : 0);
  std::vector<std::pair<double, double>> out(enc.size());
  lm.eval();
  c10::InferenceMode guard;
  const size_t bs = static_cast<size_t>(std::max<int64_t>(1, batch_size / 2));
  for (size_t start = 0; start < enc.size(); start += bs) {
    const size_t end = std::min(enc.size(), start + bs);
    std::vector<const std::vector<int32_t>*> prompts, replies;
    for (size_t i = start; i < end; ++i) prompts.push_back(&enc[i].prompt_ids), replies.push_back(&enc[i].chosen_ids);
    for (size_t i = start; i < end; ++i) prompts.push_back(&enc[i].prompt_ids), replies.push_back(&enc[i].rejected_ids);
    torch::Tensor ids, mask, resp;
    train::pad_sequences(prompts, replies, pad, &ids, &mask, &resp);
    model::ForwardInput in;
    in.input_ids = ids;
    in.attention_mask = mask;
    auto lp = train::sequence_logprob_mean(lm.forward(in), ids, resp).to(torch::kDouble).contiguous();
    const int64_t nb = static_cast<int64_t>(end - start);
    for (int64_t b = 0; b < nb; ++b)
      out[start + static_cast<size_t>(b)] = {lp[b].item<double>(), lp[nb + b].item<double>()};
  }
  return out;
}

ProbeResult run_probe(const ProbeCandidate& c, const ProbeOptions& o, const std::function<void(const std::string&)>& log_fn) {
  auto log = [&](const std::string& s) {
    if (log_fn) log_fn(s);
  };
  if (o.lrs.empty()) throw UsageError("probe: give at least one learning rate");
  if (o.val.empty()) throw UsageError("probe: give validation data (--val)");
  ProbeResult r;
  r.name = c.name;
  const auto t0 = std::chrono::steady_clock::now();
  if (o.zero_shot) {
    auto lm = model::load_pretrained(c.path, c.tokenizer);
    if (!lm.tokenizer) throw UsageError("probe: no tokenizer for " + c.path + " (give NAME=PATH,TOKENIZER)");
    const text::ChatTemplate tmpl = text::ChatTemplate::resolve(o.chat_template, lm.config.model_type, *lm.tokenizer);
    std::vector<data::PrefPair> pairs;
    for (const auto& f : o.val) {
      auto v = data::read_prefs(f);
      pairs.insert(pairs.end(), v.begin(), v.end());
    }
    if (o.max_val_pairs && pairs.size() > o.max_val_pairs) pairs.resize(o.max_val_pairs);
    auto lp = mean_response_logprobs(*lm.model, *lm.tokenizer, tmpl, pairs, o.max_length, o.batch_size);
    size_t right = 0;
    for (const auto& [ch, rj] : lp) right += ch > rj ? 1 : 0;
    r.zero_shot_pairs = lp.size();
    r.zero_shot_accuracy = lp.empty() ? -1 : static_cast<double>(right) / static_cast<double>(lp.size());
    log(c.name + ": zero-shot implicit accuracy " + std::to_string(r.zero_shot_accuracy) + " on " +
        std::to_string(lp.size()) + " pairs");
  }
  for (size_t k = 0; k < o.lrs.size(); ++k) {
    train::TrainerOptions t;
    t.model = c.path;
    t.tokenizer = c.tokenizer;
    t.data = o.data;
    t.val_data = o.val;
    t.max_val_pairs = o.max_val_pairs;
    t.chat_template = o.chat_template;
    t.max_length = o.max_length;
    t.batch_size = o.batch_size;
    t.lr = o.lrs[k];
    t.max_steps = o.steps;
    t.seed = o.seed;
    t.progress = "off";
    t.output = join_path(join_path(o.work_dir, c.name), "lr" + std::to_string(k));
    train::Trainer trainer(t);
    trainer.set_logger([](const std::string&) {});
    const auto s0 = std::chrono::steady_clock::now();
    train::TrainResult tr = trainer.train();
    ProbeRun run;
    run.lr = o.lrs[k];
    run.val_accuracy = tr.final_val_accuracy;
    run.final_loss = tr.final_loss;
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    r.sweep.push_back(run);
    if (run.val_accuracy > r.probe_accuracy) r.probe_accuracy = run.val_accuracy, r.best_lr = run.lr;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s: lr %g: val accuracy %.4f (loss %.4f, %.1fs)", c.name.c_str(), run.lr,
                  run.val_accuracy, run.final_loss, run.seconds);
    log(buf);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace rmkit::basemodel
