// Trainer setup: options, loss spec, models (reward model, frozen reference, teacher), data
// (read, split, encode). The loop itself is in trainer_loop.cpp.
#include "rmkit/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <set>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/data/batching.h"
#include "rmkit/data/encode.h"
#include "rmkit/data/readers.h"
#include "rmkit/data/splits.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/train/trainer_impl.h"

namespace rmkit::train {

nlohmann::json TrainerOptions::to_json() const {
  return {{"model", model}, {"tokenizer", tokenizer}, {"data", data}, {"format", format},
          {"skip_bad", skip_bad}, {"val_data", val_data}, {"val_fraction", val_fraction},
          {"val_split_field", val_split_field}, {"val_split_value", val_split_value},
          {"max_val_pairs", max_val_pairs}, {"chat_template", chat_template},
          {"max_length", max_length}, {"head_type", head_type}, {"head_init", head_init},
          {"freeze_backbone", freeze_backbone}, {"batch_size", batch_size},
          {"grad_accum", grad_accum}, {"lr", lr}, {"schedule", schedule},
          {"warmup_ratio", warmup_ratio}, {"min_lr_ratio", min_lr_ratio},
          {"weight_decay", weight_decay}, {"beta1", beta1}, {"beta2", beta2},
          {"adam_eps", adam_eps}, {"max_grad_norm", max_grad_norm}, {"epochs", epochs},
          {"max_steps", max_steps}, {"seed", seed}, {"bf16", bf16}, {"shared_prefix", shared_prefix},
          {"shared_prefix_always", shared_prefix_always},
          {"grad_checkpointing", grad_checkpointing}, {"loss", loss},
          {"loss_schedule", loss_schedule}, {"beta", beta}, {"kl_temperature", kl_temperature},
          {"simpo_beta", simpo_beta}, {"simpo_gamma", simpo_gamma},
          {"reference_model", reference_model}, {"teacher_model", teacher_model},
          {"eval_every", eval_every}, {"save_every", save_every},
          {"keep_checkpoints", keep_checkpoints}};
}

nlohmann::json DataSummary::to_json() const {
  return {{"rows", rows}, {"kept", kept}, {"skipped_bad", skipped_bad},
          {"dropped_identical", dropped_identical}, {"dropped_empty", dropped_empty},
          {"dropped_mismatched", dropped_mismatched}, {"train_pairs", train_pairs},
          {"val_pairs", val_pairs}, {"truncated", truncated}, {"identical_after_truncation", identical_after_truncation},
          {"padding_fraction", padding_fraction}, {"format", format}, {"data_hash", data_hash}, {"annotation_hash", annotation_hash},
          {"chat_template", chat_template}};
}

Trainer::Trainer(TrainerOptions opts) : impl_(std::make_unique<Impl>()) {
  impl_->o = std::move(opts);
  impl_->log = [](const std::string& s) { std::cerr << s << "\n"; };
}
Trainer::~Trainer() = default;
void Trainer::set_logger(std::function<void(const std::string&)> fn) { impl_->log = std::move(fn); }
void Trainer::prepare() { impl_->prepare(); }
const DataSummary& Trainer::data_summary() const { return impl_->summary; }
TrainResult Trainer::train() {
  struct ReleaseRunDir {  // the run ends here, finished or failed: another process may take OUT
    Impl* impl;
    ~ReleaseRunDir() { impl->run_lock.reset(); }
  } release{impl_.get()};
  if (!impl_->prepared) impl_->prepare();
  try {
    return impl_->train();
  } catch (const c10::Error& e) {
    // libtorch's wording (an allocation of N bytes, a size check) with the options that set it
    std::string m = e.what_without_backtrace();
    m = clip_text(m.substr(0, m.find('\n')), 300);
    if (m.find("allocate") != std::string::npos)
      throw Error("out of memory during training (" + m + "); lower --batch-size or --max-length, or use "
                  "--grad-accum / --grad-checkpointing");
    throw Error("libtorch error during training: " + m);
  }
}

namespace {

void check_options(const TrainerOptions& o) {
  auto bad = [](const std::string& m) { throw UsageError(m); };
  if (o.model.empty()) bad("missing --model");
  if (o.data.empty()) bad("missing --data (one or more preference files)");
  if (o.output.empty()) bad("missing --output directory");
  if (o.batch_size <= 0) bad("--batch-size: expected > 0");
  if (o.grad_accum <= 0) bad("--grad-accum: expected > 0");
  if (o.max_length < 8) bad("--max-length: expected >= 8");
  if (!(o.lr > 0)) bad("--lr: expected > 0");
  if (o.warmup_ratio < 0 || o.warmup_ratio > 1) bad("--warmup-ratio: expected a value in [0, 1]");
  if (o.epochs <= 0 && o.max_steps <= 0) bad("--epochs or --max-steps must be > 0");
  if (o.val_fraction < 0 || o.val_fraction >= 1) bad("--val-fraction: expected a value in [0, 1)");
  if (!o.val_split_field.empty() && o.val_split_value.empty())
    bad("--val-split-field needs --val-split-value");
  if (o.keep_checkpoints < 0) bad("--keep-checkpoints: expected >= 0");
}

// pieces of every id must agree for logits to be comparable
void check_same_vocab(const text::Tokenizer& a, const text::Tokenizer& b, const std::string& what) {
  if (a.vocab_size() != b.vocab_size())
    throw ConfigError(what + ": its tokenizer has " + std::to_string(b.vocab_size()) +
                      " tokens but the student's has " + std::to_string(a.vocab_size()) +
                      "; kl distillation needs the same tokenizer/vocabulary");
  for (int32_t i = 0; i < a.vocab_size(); ++i)
    if (a.piece(i) != b.piece(i))
      throw ConfigError(what + ": token " + std::to_string(i) + " is '" + b.piece(i) +
                        "' but the student's is '" + a.piece(i) +
                        "'; kl distillation needs the same tokenizer/vocabulary");
}

void freeze(const model::CausalLMPtr& m) {
  m->eval();
  for (auto& p : m->parameters()) p.set_requires_grad(false);
}

text::ChatTemplate pick_template(const std::string& spec, const model::ModelConfig& cfg,
                                 const text::Tokenizer& tok, const std::function<void(const std::string&)>& log) {
  auto t = text::ChatTemplate::resolve(spec, cfg.model_type, tok);
  if (spec == "auto") {
    // e.g. llama3 from model_type for a tiny llama2.c vocabulary: its markers would be plain text
    auto raw = text::ChatTemplate::detect(cfg.model_type, tok.chat_template_source());
    if (raw.name() != t.name())
      log("chat template: detected " + raw.name() + " but its marker tokens are not in the vocabulary; using " +
          t.name());
  }
  return t;
}

void add_stats(DataSummary* s, const data::ReadStats& r) {
  s->rows += r.rows;
  s->kept += r.kept;
  s->skipped_bad += r.skipped_bad;
  s->dropped_identical += r.dropped_identical;
  s->dropped_empty += r.dropped_empty;
  s->dropped_mismatched += r.dropped_mismatched;
  for (const auto& e : r.first_errors)
    if (s->first_errors.size() < 10) s->first_errors.push_back(e);
  if (s->format.empty()) s->format = r.format;
  else if (s->format != r.format && s->format.find(r.format) == std::string::npos) s->format += "," + r.format;
}

}  // namespace

void Trainer::Impl::parse_losses() {
  terms = parse_loss_spec(o.loss);
  loss_sched = parse_schedule(o.loss_schedule);
  validate_schedule(terms, loss_sched);
  hyper.beta = o.beta;
  hyper.kl_temperature = o.kl_temperature;
  hyper.simpo_beta = o.simpo_beta;
  hyper.simpo_gamma = o.simpo_gamma;
  for (const auto& t : terms) {
    if (t.name == "dpo" || t.name == "ipo" || t.name == "hinge") need_ref = need_policy = true;
    if (t.name == "simpo") need_policy = true;
    if (t.name == "sft") need_sft = true;
    if (t.name == "kl") need_kl = true;
    if (t.name == "regression") need_regression = true;
  }
  if (need_kl && o.teacher_model.empty()) throw UsageError("--loss kl needs --teacher-model");
  if (!need_ref && !o.reference_model.empty())
    log("note: --reference-model is unused (no dpo/ipo/hinge term in --loss)");
}

void Trainer::Impl::prepare() {
  if (prepared) return;
  check_options(o);
  parse_losses();
  open_run_dir();

  // 1. read + split (before the model: the attribute head size comes from the data)
  data::ReadOptions ro;
  ro.format = o.format;
  ro.skip_bad = o.skip_bad;
  ro.keep_raw = o.val_split_field.rfind("meta.", 0) == 0;
  std::vector<data::PrefPair> all, val_pairs;
  for (const auto& f : o.data) {
    data::ReadStats st;
    auto p = data::read_prefs(f, ro, &st);
    add_stats(&summary, st);
    log("data " + f + ": " + std::to_string(st.rows) + " rows, " + std::to_string(st.kept) + " pairs kept, " +
        std::to_string(st.skipped_bad) + " bad rows skipped, " + std::to_string(st.dropped_identical) +
        " identical and " + std::to_string(st.dropped_empty) + " empty pairs dropped" +
        (st.dropped_mismatched ? ", " + std::to_string(st.dropped_mismatched) + " mismatched dropped" : "") +
        " (format " + st.format + ")");
    for (const auto& e : st.first_errors) log("  skipped: " + e);
    all.insert(all.end(), std::make_move_iterator(p.begin()), std::make_move_iterator(p.end()));
  }
  std::vector<data::PrefPair> train_pairs;
  if (!o.val_data.empty()) {
    for (const auto& f : o.val_data) {
      data::ReadStats st;
      auto p = data::read_prefs(f, ro, &st);
      log("validation data " + f + ": " + std::to_string(st.kept) + " pairs of " + std::to_string(st.rows) + " rows");
      val_pairs.insert(val_pairs.end(), std::make_move_iterator(p.begin()), std::make_move_iterator(p.end()));
    }
    train_pairs = std::move(all);
  } else if (!o.val_split_field.empty()) {
    auto s = data::split_by_field(all, o.val_split_field, o.val_split_value);
    train_pairs = std::move(s.train);
    val_pairs = std::move(s.val);
  } else if (o.val_fraction > 0) {
    auto s = data::split_by_fraction(all, o.val_fraction, o.seed);
    train_pairs = std::move(s.train);
    val_pairs = std::move(s.val);
  } else {
    train_pairs = std::move(all);
  }
  if (o.max_val_pairs > 0 && val_pairs.size() > o.max_val_pairs) val_pairs.resize(o.max_val_pairs);
  if (train_pairs.empty()) {
    data::ReadStats totals;
    totals.rows = summary.rows;
    totals.skipped_bad = summary.skipped_bad;
    totals.dropped_identical = summary.dropped_identical;
    totals.dropped_empty = summary.dropped_empty;
    totals.dropped_mismatched = summary.dropped_mismatched;
    totals.first_errors = summary.first_errors;
    std::string where = o.data.size() == 1 ? o.data[0] : std::to_string(o.data.size()) + " --data files";
    if (summary.kept == 0) throw ConfigError(data::no_usable_pairs_message(totals, where));
    std::set<std::string> prompts;
    for (const auto& p : val_pairs) prompts.insert(data::prompt_key(p));
    throw ConfigError("no usable pairs for training in " + where + ": " + std::to_string(summary.rows) +
                      " rows read, " + std::to_string(summary.kept) + " pairs kept, all " +
                      std::to_string(val_pairs.size()) + " went to validation" +
                      (prompts.size() == 1 && o.val_split_field.empty()
                           ? " because they share one prompt (the split keeps a prompt's pairs together); use "
                             "--val-fraction 0 (or --val-data FILE)"
                           : "; use a smaller --val-fraction, another --val-split or --val-fraction 0"));
  }

  // loss-specific data requirements: say how many pairs lack what, never train on NaN targets
  size_t no_scores = 0, no_margin = 0, no_teacher = 0, k = 0;
  for (const auto& p : train_pairs) {
    bool scores = p.score_chosen && p.score_rejected;
    no_scores += !scores;
    no_margin += !(scores || p.margin);
    no_teacher += p.teacher_response.empty();
    k = std::max(k, p.attributes.size());
  }
  const std::string of = " of " + std::to_string(train_pairs.size()) + " training pairs";
  for (const auto& t : terms) {
    if ((t.name == "margin-mse" || t.name == "soft-bce") && no_scores)
      throw ConfigError("--loss " + t.name + " needs score_chosen and score_rejected; " +
                        std::to_string(no_scores) + of + " lack them");
    if (t.name == "bt-margin" && no_margin)
      throw ConfigError("--loss bt-margin needs a margin or both scores; " + std::to_string(no_margin) + of +
                        " have neither");
    if (t.name == "sft" && no_teacher == train_pairs.size())
      throw ConfigError("--loss sft needs teacher_response in the data; none" + of + " has one");
    if (t.name == "regression" && k == 0)
      throw ConfigError("--loss regression needs `attributes` in the data; none" + of + " has them");
  }
  if (need_sft && no_teacher) log("note: " + std::to_string(no_teacher) + of + " have no teacher_response (sft skips them)");

  // 2. models
  HeadConfig head;
  head.type = o.head_type;
  head.init = o.head_init;
  head.num_attributes = need_regression ? static_cast<int64_t>(k) : 0;
  torch::manual_seed(o.seed);  // a fresh head's init depends only on --seed
  auto loaded = load_reward_model(o.model, o.tokenizer, head, /*require_head=*/false);  // a base LM gets a fresh head
  cfg = loaded.config;
  rm = loaded.model;
  tok = std::move(loaded.tokenizer);
  if (!tok) throw ConfigError(o.model + ": no tokenizer found beside the model; pass --tokenizer");
  if (loaded.has_head) log("model " + o.model + ": continuing from its reward head (" + rm->head_config().type + ")");
  if (need_regression && rm->head_config().num_attributes != static_cast<int64_t>(k))
    throw ConfigError(o.model + ": its attribute head has " + std::to_string(rm->head_config().num_attributes) +
                      " outputs but the data has " + std::to_string(k) + " attributes");
  pad_id = cfg.pad_token_id >= 0 ? cfg.pad_token_id
           : tok->pad_id() >= 0  ? tok->pad_id()
           : tok->eos_id() >= 0  ? tok->eos_id()
                                 : 0;
  if (o.freeze_backbone) rm->set_backbone_trainable(false);
  rm->backbone().set_activation_checkpointing(o.grad_checkpointing);
  if (need_ref) {
    std::string path = o.reference_model.empty() ? o.model : o.reference_model;
    auto r = model::load_pretrained(path, o.tokenizer);
    if (r.config.vocab_size != cfg.vocab_size)
      throw ConfigError("--reference-model " + path + ": vocab size " + std::to_string(r.config.vocab_size) +
                        " differs from the model's " + std::to_string(cfg.vocab_size));
    ref = r.model;
    freeze(ref);
    log("reference model: frozen copy of " + path);
  }
  if (need_kl) {
    auto t = model::load_pretrained(o.teacher_model, o.tokenizer);
    if (t.config.vocab_size != cfg.vocab_size)
      throw ConfigError("--teacher-model " + o.teacher_model + ": vocab size " + std::to_string(t.config.vocab_size) +
                        " differs from the student's " + std::to_string(cfg.vocab_size) +
                        "; kl distillation needs the same tokenizer/vocabulary");
    if (t.tokenizer) check_same_vocab(*tok, *t.tokenizer, "--teacher-model " + o.teacher_model);
    teacher = t.model;
    freeze(teacher);
  }
  if (cfg.max_position_embeddings > 0 && o.max_length > cfg.max_position_embeddings)
    log("warning: --max-length " + std::to_string(o.max_length) + " exceeds the model's context of " +
        std::to_string(cfg.max_position_embeddings) + " positions; longer pairs train positions it never saw");
  tmpl = pick_template(o.chat_template, cfg, *tok, log);
  summary.chat_template = tmpl->spec();
  // a prompt role the template cannot render makes a row malformed (FILE:LINE: field
  // 'prompt[i].role'); --skip-bad skips it like the rows the reader rejected
  for (auto* set : {&train_pairs, &val_pairs}) {
    data::ReadStats st;
    st.kept = set->size();
    const size_t n = data::skip_unrenderable(set, *tmpl, o.skip_bad, false, &st);
    if (n == 0) continue;
    summary.skipped_bad += n;
    summary.kept -= std::min(summary.kept, n);
    for (const auto& e : st.first_errors)
      if (summary.first_errors.size() < 10) summary.first_errors.push_back(e);
    log(std::to_string(n) + " rows skipped (--skip-bad): their prompt has a role chat template " + tmpl->name() +
        " cannot render");
    for (const auto& e : st.first_errors) log("  skipped: " + e);
  }
  if (train_pairs.empty())
    throw ConfigError("no usable pairs for training: every training row has a prompt role chat template " +
                      tmpl->name() + " cannot render (--skip-bad skipped them)");

  // 3. encode
  size_t trunc_train = 0, trunc_val = 0;
  train_set = encode_examples(train_pairs, *tok, *tmpl, o.max_length, need_sft, &trunc_train);
  val_set = encode_examples(val_pairs, *tok, *tmpl, o.max_length, false, &trunc_val);
  summary.train_pairs = train_set.size();
  summary.val_pairs = val_set.size();
  summary.truncated = trunc_train + trunc_val;
  summary.data_hash = fnv1a_hex(data::data_hash(train_pairs) + "|" + data::data_hash(val_pairs));
  summary.annotation_hash = fnv1a_hex(data::annotation_hash(train_pairs) + "|" + data::annotation_hash(val_pairs));
  for (const auto& e : train_set) train_lengths.push_back(e.length());
  for (const auto& e : val_set) val_lengths.push_back(e.length());

  auto batches = data::length_grouped_batches(train_lengths, static_cast<size_t>(global_batch()), o.seed, 0);
  batches_per_epoch = static_cast<int64_t>(batches.size());
  // exact padding of the joint chosen+rejected batches of epoch 0
  double real = 0, slots = 0;
  for (const auto& b : batches) {
    size_t longest = 0;
    for (size_t i : b) {
      longest = std::max(longest, train_set[i].length());
      real += static_cast<double>(train_set[i].chosen_length() + train_set[i].rejected_length());
    }
    slots += 2.0 * static_cast<double>(b.size() * longest);
  }
  summary.padding_fraction = slots > 0 ? 1.0 - real / slots : 0.0;
  int64_t steps_per_epoch = (batches_per_epoch + o.grad_accum - 1) / o.grad_accum;
  total_steps = o.max_steps > 0 ? o.max_steps : o.epochs * steps_per_epoch;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "data: %zu train / %zu validation pairs, %zu truncated to %lld tokens, padding %.1f%%, "
                "chat template %s; %lld batches per epoch, %lld optimizer steps",
                summary.train_pairs, summary.val_pairs, summary.truncated, static_cast<long long>(o.max_length),
                100.0 * summary.padding_fraction, tmpl->name().c_str(),
                static_cast<long long>(batches_per_epoch), static_cast<long long>(total_steps));
  log(buf);
  // pairs whose two sequences became one after templating and truncation teach nothing (their
  // reward gap is 0 up to rounding); said, not dropped, so the data and its hash stay the same
  size_t identical = 0;
  for (const auto* set : {&train_set, &val_set})
    for (const auto& e : *set) identical += e.chosen == e.rejected;
  summary.identical_after_truncation = identical;
  if (identical > 0)
    log("warning: " + std::to_string(identical) + " pairs have identical chosen and rejected tokens after templating and "
        "truncation to " + std::to_string(o.max_length) + " tokens (a longer --max-length keeps them apart)");
  prepared = true;
}

}  // namespace rmkit::train
