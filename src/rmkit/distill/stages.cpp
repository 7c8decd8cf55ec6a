#include "rmkit/distill/stages.h"

#include <algorithm>
#include <random>

#include "rmkit/core/file_io.h"
#include "rmkit/distill/parse.h"

namespace rmkit::distill {
namespace {

void drop(DistillItem& it, const std::string& reason, const std::string& detail = "") {
  it.dropped = reason;
  it.dropped_detail = detail;
}

// Per-item RNG: depends on the seed and the item's id only, never on other items.
std::mt19937_64 item_rng(const DistillConfig& cfg, const DistillItem& it, const char* salt) {
  return std::mt19937_64(std::stoull(fnv1a_hex(it.id + '\x1f' + salt, 1469598103934665603ULL ^ cfg.seed), nullptr, 16));
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

ChatRequest sampled(const std::string& model, const text::Conversation& msgs, const SamplingSpec& s, int64_t index,
                    uint64_t seed) {
  ChatRequest r;
  r.model = model;
  r.messages = msgs;
  r.sampling = s;
  if (s.temperature > 0) {
    r.sample_index = index;
    r.seed = seed + static_cast<uint64_t>(index);
  }
  return r;
}

ChatRequest greedy(const std::string& model, text::Conversation msgs, const SamplingSpec& s) {
  ChatRequest r;
  r.model = model;
  r.messages = std::move(msgs);
  r.sampling = s;
  return r;
}

}  // namespace

void candidates_from_pairs(std::vector<DistillItem>& items, const DistillConfig& cfg) {
  for (auto& it : items) {
    if (!it.alive()) continue;
    if (!it.labelled) {
      drop(it, "no_candidates", "a prompt row needs --policy");
      continue;
    }
    it.candidates = {it.label_chosen, it.label_rejected};
    auto rng = item_rng(cfg, it, "order");
    const bool swap = (rng() & 1) != 0;
    it.a = swap ? it.label_rejected : it.label_chosen;
    it.b = swap ? it.label_chosen : it.label_rejected;
  }
}

std::vector<std::vector<ChatRequest>> candidate_requests(const std::vector<DistillItem>& items, const DistillConfig& cfg,
                                                         size_t n_policies, std::vector<size_t>* owner) {
  const int spp = cfg.samples_per_policy > 0 ? cfg.samples_per_policy : (n_policies >= 2 ? 1 : 2);
  std::vector<std::vector<ChatRequest>> reqs(n_policies);
  owner->clear();
  for (const auto& it : items) {
    if (!it.alive()) continue;
    for (int s = 0; s < spp; ++s) owner->push_back(it.index);
  }
  for (size_t k = 0; k < n_policies; ++k)
    for (const auto& it : items) {
      if (!it.alive()) continue;
      for (int s = 0; s < spp; ++s)
        reqs[k].push_back(sampled(cfg.policy_models[k], it.prompt, cfg.candidate_sampling, s, cfg.seed));
    }
  return reqs;
}

void apply_candidates(std::vector<DistillItem>& items, const DistillConfig& cfg,
                      const std::vector<std::vector<CallOutcome>>& outcomes, const std::vector<size_t>& owner,
                      size_t n_policies) {
  std::vector<std::string> errors(items.size());
  for (size_t k = 0; k < n_policies; ++k)
    for (size_t j = 0; j < owner.size(); ++j) {
      auto& it = items[owner[j]];
      const auto& oc = outcomes[k][j];
      if (oc.reply) it.candidates.push_back(oc.reply->text);
      else if (errors[it.index].empty()) errors[it.index] = oc.error;
    }
  for (auto& it : items) {
    if (!it.alive()) continue;
    // seeded shuffle (Fisher-Yates on raw draws), then the first two distinct non-blank texts
    std::vector<size_t> order(it.candidates.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto rng = item_rng(cfg, it, "candidates");
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    std::vector<size_t> pick;
    for (size_t i : order) {
      const auto& c = it.candidates[i];
      if (blank(c)) continue;
      if (!pick.empty() && it.candidates[pick[0]] == c) continue;
      pick.push_back(i);
      if (pick.size() == 2) break;
    }
    if (pick.size() < 2) {
      drop(it, errors[it.index].empty() ? "too_few_candidates" : "candidate_call_failed", errors[it.index]);
      continue;
    }
    it.a = it.candidates[pick[0]];
    it.b = it.candidates[pick[1]];
  }
}

std::vector<ChatRequest> judge_requests(const std::vector<DistillItem>& items, const DistillConfig& cfg,
                                        const PromptSet& prompts, bool regrade, std::vector<size_t>* owner) {
  std::vector<ChatRequest> reqs;
  owner->clear();
  for (const auto& it : items) {
    if (!it.alive()) continue;
    if (regrade && !(it.score_a == it.score_b)) continue;
    const std::string q = question_text(it.prompt);
    for (int o = 0; o < cfg.orders; ++o) {
      std::string text = prompts.judge.render(
          {{"question", q}, {"answer_a", o == 0 ? it.a : it.b}, {"answer_b", o == 0 ? it.b : it.a}});
      if (regrade) text += "\n\n" + prompts.tie_note.render({});
      reqs.push_back(greedy(cfg.teacher_model, {{"user", text}}, cfg.judge_sampling));
      owner->push_back(it.index);
    }
  }
  return reqs;
}

void apply_judge(std::vector<DistillItem>& items, const DistillConfig& cfg, const std::vector<CallOutcome>& outcomes,
                 const std::vector<size_t>& owner, bool regrade) {
  for (size_t j = 0; j < owner.size(); j += static_cast<size_t>(cfg.orders)) {
    auto& it = items[owner[j]];
    std::vector<double> scores;
    bool ok = true;
    for (int o = 0; o < cfg.orders && ok; ++o) {
      const auto& oc = outcomes[j + static_cast<size_t>(o)];
      if (!oc.reply) {
        drop(it, "judge_call_failed", oc.error);
        ok = false;
        break;
      }
      auto s = parse_two_scores(oc.reply->text);
      if (!s) {
        drop(it, "judge_unparsable", oc.reply->text);
        ok = false;
        break;
      }
      // order 0 shows (A, B), order 1 shows (B, A): store per response as [sA, sB]
      scores.push_back(o == 0 ? s->first : s->second);
      scores.push_back(o == 0 ? s->second : s->first);
    }
    if (!ok) continue;
    double sa = 0, sb = 0;
    for (size_t k = 0; k < scores.size(); k += 2) {
      sa += scores[k];
      sb += scores[k + 1];
    }
    it.judge_scores = scores;
    it.score_a = sa / cfg.orders;
    it.score_b = sb / cfg.orders;
    it.regraded = regrade;
  }
  // ties: dropped unless a re-grade is still to come
  for (auto& it : items) {
    if (!it.alive() || it.judge_scores.empty()) continue;
    if (it.score_a == it.score_b) {
      if (!cfg.regrade_ties || regrade) drop(it, "tie");
      continue;
    }
    const bool a_wins = it.score_a > it.score_b;
    it.chosen = a_wins ? it.a : it.b;
    it.rejected = a_wins ? it.b : it.a;
    it.score_chosen = a_wins ? it.score_a : it.score_b;
    it.score_rejected = a_wins ? it.score_b : it.score_a;
    if (cfg.agree_with_labels && it.labelled && cfg.policy_models.empty() && it.chosen != it.label_chosen)
      drop(it, "disagrees_with_label");
  }
}

std::vector<ChatRequest> teacher_requests(const std::vector<DistillItem>& items, const DistillConfig& cfg,
                                          std::vector<size_t>* owner) {
  std::vector<ChatRequest> reqs;
  owner->clear();
  for (const auto& it : items) {
    if (!it.alive()) continue;
    // its own sample index (and seed): with the teacher also serving as a policy, sample 0 would be
    // the same request as candidate 0, answered (or cached) with that candidate's text
    reqs.push_back(sampled(cfg.teacher_model, it.prompt, cfg.teacher_sampling, kTeacherSampleIndex, cfg.seed));
    owner->push_back(it.index);
  }
  return reqs;
}

void apply_teacher(std::vector<DistillItem>& items, const std::vector<CallOutcome>& outcomes,
                   const std::vector<size_t>& owner) {
  for (size_t j = 0; j < owner.size(); ++j) {
    auto& it = items[owner[j]];
    if (!outcomes[j].reply) drop(it, "teacher_call_failed", outcomes[j].error);
    else if (blank(outcomes[j].reply->text)) drop(it, "teacher_response_empty");
    else it.teacher_response = outcomes[j].reply->text;
  }
}

std::vector<ChatRequest> refine_requests(std::vector<DistillItem>& items, const DistillConfig& cfg,
                                         const PromptSet& prompts, std::vector<size_t>* owner) {
  std::vector<ChatRequest> reqs;
  owner->clear();
  for (auto& it : items) {
    if (!it.alive()) continue;
    it.refine_request = prompts.refine.render(
        {{"question", question_text(it.prompt)}, {"preferred", it.teacher_response}, {"rejected", it.rejected}});
    reqs.push_back(greedy(cfg.teacher_model, {{"user", it.refine_request}}, cfg.refine_sampling));
    owner->push_back(it.index);
  }
  return reqs;
}

void apply_refine(std::vector<DistillItem>& items, const DistillConfig& cfg, const std::vector<CallOutcome>& outcomes,
                  const std::vector<size_t>& owner) {
  for (size_t j = 0; j < owner.size(); ++j) {
    auto& it = items[owner[j]];
    const auto& oc = outcomes[j];
    if (!oc.reply) {
      drop(it, "refine_call_failed", oc.error);
      continue;
    }
    it.refine_reply = oc.reply->text;
    auto edit = extract_modified_response(oc.reply->text);
    if (!edit) {
      drop(it, "refine_no_tags", clip_text(oc.reply->text, 120));
      continue;
    }
    // the edit comes trimmed: compare it (and measure it) against the trimmed y_l, so that an
    // echo of y_l that differs only in surrounding whitespace counts as unchanged
    const std::string rejected = trim_space(it.rejected);
    if (blank(*edit) || *edit == rejected) {
      drop(it, "refine_unchanged");
      continue;
    }
    it.refined = *edit;
    it.edit_ratio = normalized_edit_distance(rejected, *edit);
    if (it.edit_ratio > cfg.max_edit_ratio) drop(it, "edit_ratio_above_max", format_score(it.edit_ratio));
  }
}

std::vector<ChatRequest> rescore_requests(const std::vector<DistillItem>& items, const DistillConfig& cfg,
                                          const PromptSet& prompts, std::vector<size_t>* owner) {
  std::vector<ChatRequest> reqs;
  owner->clear();
  for (const auto& it : items) {
    if (!it.alive()) continue;
    text::Conversation conv = {{"user", it.refine_request},
                               {"assistant", it.refine_reply},
                               {"user", prompts.rescore.render({{"score", format_score(it.score_rejected)}})}};
    reqs.push_back(greedy(cfg.teacher_model, std::move(conv), cfg.rescore_sampling));
    owner->push_back(it.index);
  }
  return reqs;
}

void apply_rescore(std::vector<DistillItem>& items, const DistillConfig& cfg, const std::vector<CallOutcome>& outcomes,
                   const std::vector<size_t>& owner) {
  for (size_t j = 0; j < owner.size(); ++j) {
    auto& it = items[owner[j]];
    const auto& oc = outcomes[j];
    if (!oc.reply) {
      drop(it, "rescore_call_failed", oc.error);
      continue;
    }
    auto s = parse_one_score(oc.reply->text);
    if (s) {
      it.score_refined = *s;
    } else if (cfg.calibration_fallback) {
      it.score_refined = *cfg.calibration_fallback;
      it.calibration_fallback_used = true;
    } else {
      drop(it, "rescore_unparsable", oc.reply->text);
    }
  }
}

void apply_filter(std::vector<DistillItem>& items, const DistillConfig& cfg) {
  for (auto& it : items) {
    if (!it.alive()) continue;
    if (!(it.score_refined - it.score_rejected > cfg.min_margin))
      drop(it, "margin_below_min", format_score(it.score_refined - it.score_rejected));
  }
}

}  // namespace rmkit::distill
