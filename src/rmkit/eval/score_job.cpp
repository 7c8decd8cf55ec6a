#include "rmkit/eval/score_job.h"

#include <iostream>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/data/encode.h"
#include "rmkit/dist/shard.h"
#include "rmkit/eval/metrics/score_reader.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/train/reward_model.h"

namespace rmkit::eval {

struct RowScorer::Impl {
  ScoreJob job;
  bool implicit = false;
  train::LoadedRewardModel rm;
  model::LoadedModel policy, reference;
  std::unique_ptr<text::ChatTemplate> tmpl;
  const text::Tokenizer* tok = nullptr;
};

bool is_single_response_file(const std::string& path) {
  bool single = false;
  for_each_line(path, [&](const std::string& line, size_t) {
    if (line.find_first_not_of(" \t") == std::string::npos) return true;
    try {
      auto j = nlohmann::json::parse(line);
      single = j.is_object() && j.contains("response") && !j.contains("chosen");
    } catch (const nlohmann::json::exception&) {
    }
    return false;
  });
  return single;
}

RowScorer::RowScorer(const ScoreJob& job) : impl_(std::make_unique<Impl>()) {
  impl_->job = job;
  if (!job.policy.empty() || !job.reference.empty()) {
    if (job.policy.empty() || job.reference.empty())
      throw UsageError("--policy and --reference must be given together (DPO implicit reward)");
    impl_->implicit = true;
    impl_->policy = model::load_pretrained(job.policy, job.tokenizer);
    impl_->reference = model::load_pretrained(job.reference, job.tokenizer);
    if (!impl_->policy.tokenizer) throw ConfigError(job.policy + ": no tokenizer found (pass --tokenizer)");
    if (impl_->policy.config.vocab_size != impl_->reference.config.vocab_size)
      throw ConfigError("--policy and --reference have different vocabularies (" +
                        std::to_string(impl_->policy.config.vocab_size) + " vs " +
                        std::to_string(impl_->reference.config.vocab_size) + ")");
    train::check_tokenizer_fits(*impl_->policy.tokenizer, impl_->policy.config.vocab_size, job.policy);
    impl_->tok = impl_->policy.tokenizer.get();
    impl_->tmpl = std::make_unique<text::ChatTemplate>(
        choose_template(impl_->policy.config, *impl_->tok, "", job.chat_template));
    resolve_max_length(impl_->policy.config.max_position_embeddings, job.policy);
    return;
  }
  if (job.model.empty()) throw UsageError("give --model DIR, or --policy DIR --reference DIR");
  impl_->rm = train::load_reward_model(job.model, job.tokenizer);  // requires the reward head
  if (!impl_->rm.tokenizer) throw ConfigError(job.model + ": no tokenizer found (pass --tokenizer)");
  impl_->tok = impl_->rm.tokenizer.get();
  impl_->tmpl = std::make_unique<text::ChatTemplate>(
      choose_template(impl_->rm.config, *impl_->tok, impl_->rm.meta.chat_template, job.chat_template));
  resolve_max_length(impl_->rm.config.max_position_embeddings, job.model);
}

void RowScorer::resolve_max_length(int64_t context, const std::string& model) {
  auto& len = impl_->job.opts.max_length;
  if (context <= 0) {
    if (len <= 0) len = 1024;
    return;
  }
  if (len <= 0) {
    len = context;
  } else if (len > context) {
    const std::string m = "--max-length " + std::to_string(len) + " exceeds the context of " + model + " (" +
                          std::to_string(context) + " positions); longer sequences are outside what it was trained on";
    if (impl_->job.strict) throw UsageError(m + " (refused under --strict)");
    std::cerr << "warning: " << m << "\n";
  }
}

int64_t RowScorer::max_length() const { return impl_->job.opts.max_length; }

RowScorer::~RowScorer() = default;

std::string RowScorer::describe() const {
  std::string what = impl_->implicit ? "DPO implicit reward of " + impl_->job.policy + " vs " + impl_->job.reference
                                     : "reward model " + impl_->job.model;
  return what + " (chat template " + impl_->tmpl->name() + ")";
}

static text::Conversation prompt_of(const nlohmann::json& p, const std::string& where) {
  text::Conversation conv;
  if (p.is_string()) {
    conv.push_back({"user", p.get<std::string>()});
  } else if (p.is_array()) {
    for (const auto& m : p) {
      if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
          !m["content"].is_string())
        throw FormatError(where + ": field 'prompt': expected {role, content} messages");
      conv.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
  } else if (!p.is_null()) {
    throw FormatError(where + ": field 'prompt': expected a string or a message list");
  }
  return conv;
}

ScoredFile RowScorer::score_file(const std::string& path) {
  try {
    return score_file_impl(path);
  } catch (const c10::Error& e) {
    std::string m = e.what_without_backtrace();
    m = clip_text(m.substr(0, m.find('\n')), 300);
    if (m.find("allocate") != std::string::npos)
      throw Error(path + ": out of memory while scoring (" + m + "); lower --batch-size, --max-tokens or --max-length");
    throw Error(path + ": libtorch error while scoring: " + m);
  }
}

ScoredFile RowScorer::score_file_impl(const std::string& path) {
  ScoredFile out;
  if (is_single_response_file(path)) {
    if (impl_->implicit) throw UsageError(path + ": single-response rows need --model, not --policy/--reference");
    out.singles = true;
    std::vector<std::pair<text::Conversation, std::string>> items;
    for_each_line(path, [&](const std::string& line, size_t no) {
      if (line.find_first_not_of(" \t") == std::string::npos) return true;
      std::string where = path + ":" + std::to_string(no);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw FormatError(where + ": invalid JSON: " + e.what());
      }
      if (!j.contains("response") || !j["response"].is_string())
        throw FormatError(where + ": field 'response': expected a string");
      items.emplace_back(prompt_of(j.value("prompt", nlohmann::json()), where), j["response"].get<std::string>());
      const auto& conv = items.back().first;
      for (size_t m = 0; m < conv.size(); ++m)
        if (const std::string why = impl_->tmpl->role_problem(conv[m].role); !why.empty())
          throw FormatError(where + ": field 'prompt[" + std::to_string(m) + "].role': " + why);
      out.rows.push_back(std::move(j));
      out.lines.push_back(no);
      return true;
    });
    // data parallel (rmkit score/eval under torchrun or rmkit launch): each rank scores its share
    auto r = dist::shard_items(items.size(), 1, 0, [&](const std::vector<size_t>& mine, std::vector<double>*) {
      std::vector<std::pair<text::Conversation, std::string>> sub;
      for (size_t i : mine) sub.push_back(items[i]);
      return std::vector<std::vector<double>>{
          sub.empty() ? std::vector<double>{} : score_singles(*impl_->rm.model, *impl_->tok, *impl_->tmpl, sub, impl_->job.opts)};
    }, nullptr, "all-gather of " + path + "'s rewards")[0];
    for (size_t i = 0; i < r.size(); ++i) out.rows[i]["reward"] = r[i];
    out.stats.rows = out.stats.kept = out.rows.size();
    return out;
  }
  data::ReadOptions ro;
  ro.format = impl_->job.format;
  ro.skip_bad = impl_->job.skip_bad;
  ro.keep_dropped = impl_->job.keep_skipped;
  auto all = data::read_prefs(path, ro, &out.stats);
  // a prompt role the template cannot render is a malformed row too (--skip-bad skips it)
  data::skip_unrenderable(&all, *impl_->tmpl, ro.skip_bad, ro.keep_dropped, &out.stats);
  std::vector<data::PrefPair> pairs;
  std::vector<size_t> where;  // all[where[k]] is pairs[k]
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].skipped.empty()) {
      pairs.push_back(all[i]);
      where.push_back(i);
    }
  PairRewards r;
  std::vector<double> truncated;
  // data parallel (rmkit score/eval under torchrun or rmkit launch): each rank scores its share
  auto cols = dist::shard_items(pairs.size(), 2, 1, [&](const std::vector<size_t>& mine, std::vector<double>* sc) {
    std::vector<data::PrefPair> sub;
    for (size_t i : mine) sub.push_back(pairs[i]);
    PairRewards pr;
    if (!sub.empty())
      pr = impl_->implicit ? implicit_rewards(*impl_->policy.model, *impl_->reference.model, *impl_->tok, *impl_->tmpl,
                                              sub, impl_->job.opts)
                           : score_pairs(*impl_->rm.model, *impl_->tok, *impl_->tmpl, sub, impl_->job.opts);
    (*sc)[0] = static_cast<double>(pr.truncated);
    return std::vector<std::vector<double>>{pr.chosen, pr.rejected};
  }, &truncated, "all-gather of " + path + "'s rewards");
  r.chosen = std::move(cols[0]);
  r.rejected = std::move(cols[1]);
  r.truncated = static_cast<size_t>(truncated[0]);
  out.truncated = r.truncated;
  std::vector<long> scored(all.size(), -1);
  for (size_t k = 0; k < where.size(); ++k) scored[where[k]] = static_cast<long>(k);
  out.rows.reserve(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& p = all[i];
    out.lines.push_back(p.line);
    nlohmann::json row = p.raw.is_object() ? p.raw : nlohmann::json::object();
    if (!p.skipped.empty()) {
      if (!row.contains("id")) row["id"] = p.id;
      row["reward_chosen"] = nullptr;
      row["reward_rejected"] = nullptr;
      row["skipped"] = p.skipped;
      out.rows.push_back(std::move(row));
      continue;
    }
    const size_t k = static_cast<size_t>(scored[i]);
    // Keep the grouping fields evaluation needs even when the input format lacks them.
    if (!row.contains("id")) row["id"] = p.id;
    if (!row.contains("category") && !p.category.empty()) row["category"] = p.category;
    if (!row.contains("subset") && !p.subset.empty()) row["subset"] = p.subset;
    if (!row["chosen"].is_string()) row["chosen"] = p.chosen;
    if (!row["rejected"].is_string()) row["rejected"] = p.rejected;
    // A transcript row (HH-RLHF: the whole conversation in chosen/rejected) keeps its text; the
    // length bias is about the final replies, so their lengths go beside it (score_reader.h).
    if (row["chosen"] != nlohmann::json(p.chosen) || row["rejected"] != nlohmann::json(p.rejected)) {
      row["reply_length_chosen"] = utf8_length(p.chosen);
      row["reply_length_rejected"] = utf8_length(p.rejected);
    }
    if (p.chosen_style >= 0 && p.rejected_style >= 0) {  // the reader accepts both or neither
      if (!row.contains("meta") || !row["meta"].is_object()) row["meta"] = nlohmann::json::object();
      row["meta"]["chosen_style"] = p.chosen_style;
      row["meta"]["rejected_style"] = p.rejected_style;
      if (!row.contains("source")) row["source"] = "RM-Bench";
    }
    row["reward_chosen"] = r.chosen[k];
    row["reward_rejected"] = r.rejected[k];
    out.rows.push_back(std::move(row));
  }
  return out;
}

}  // namespace rmkit::eval
