#include "rmkit/select/laser_bon.h"

#include <cmath>
#include <limits>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/context_features.h"
#include "rmkit/select/laser_common.h"
#include "rmkit/select/preference_pairs.h"

namespace rmkit::select {

using json = nlohmann::json;

LaserBonResult laser_bon(const LaserBonConfig& cfg) {
  const auto prompts = read_laser_prompts(cfg.prompts);
  std::vector<double> feedback;
  if (!cfg.feedback.empty()) {
    if (!path_exists(cfg.feedback)) throw IoError("--feedback " + cfg.feedback + ": no such file");
    for_each_line(cfg.feedback, [&](const std::string& line, size_t no) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) return true;
      auto j = json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("reward") || !j["reward"].is_number())
        throw FormatError(cfg.feedback + ":" + std::to_string(no) + ": expected {\"reward\": number}");
      feedback.push_back(j["reward"].get<double>());
      return true;
    });
    if (feedback.size() != prompts.size())
      throw FormatError(cfg.feedback + ": " + std::to_string(feedback.size()) + " feedback rows for " +
                        std::to_string(prompts.size()) + " prompts (one per prompt, in order)");
  }
  auto pol = model::load_pretrained(cfg.policy, cfg.tokenizer);
  if (!pol.tokenizer) throw ConfigError(cfg.policy + ": no tokenizer found beside the policy (pass --tokenizer)");
  std::shared_ptr<text::Tokenizer> tok(std::move(pol.tokenizer));
  pol.model->eval();
  const PromptEncoder enc(pol.config, *tok, cfg.chat_template);
  std::vector<std::string> names;
  auto arms = load_arms(cfg.rms, cfg.arm_options, &names);
  // a learned state brings its own strategy (the --bandit given is for a fresh start)
  ArmPolicyConfig acfg = cfg.arm;
  json state;
  if (!cfg.bandit_state.empty()) {
    state = json::parse(read_file(cfg.bandit_state), nullptr, false);
    if (!state.is_object() || !state.contains("strategy") || !state["strategy"].is_string())
      throw FormatError("--bandit-state " + cfg.bandit_state + ": not a laser bandit state (expected {\"strategy\", ...})");
    acfg.strategy = state["strategy"].get<std::string>();
  }
  ArmPolicy chooser(acfg, names, static_cast<size_t>(pol.config.hidden_size));
  if (!cfg.bandit_state.empty()) {
    chooser.load(state);
    if (cfg.feedback.empty()) chooser.set_greedy();
  }
  const std::vector<uint64_t> counts_before = chooser.counts();
  serve::Engine engine(pol.model, tok, laser_engine_config(cfg));

  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<int64_t>> ids64;
  for (const auto& p : prompts) {
    ids.push_back(enc.encode(p.prompt));
    ids64.emplace_back(ids.back().begin(), ids.back().end());
  }
  const auto rows = context_rows(model::prompt_contexts(*pol.model, ids64, model::parse_context_mode(cfg.context)));
  // Without feedback every choice is known up front: one generation pass over all prompts.
  // With feedback, prompts go one at a time (each choice sees the previous updates).
  const size_t chunk = feedback.empty() ? prompts.size() : 1;
  std::string out;
  for (size_t p0 = 0; p0 < prompts.size(); p0 += chunk) {
    const size_t p1 = std::min(prompts.size(), p0 + chunk);
    std::vector<size_t> batch, arm_of;
    std::vector<std::vector<int32_t>> gen;
    std::vector<serve::SamplingParams> params;
    std::vector<std::vector<double>> arm_scores;
    for (size_t i = p0; i < p1; ++i) {
      batch.push_back(i);
      arm_of.push_back(chooser.ensemble() ? 0 : chooser.choose(rows[i], 0));
      arm_scores.push_back(chooser.last_scores());
      gen.push_back(ids[i]);
      params.push_back(laser_sampling(cfg, cfg.n, static_cast<uint64_t>(i)));
    }
    const auto outs = engine.generate_many(gen, params);
    ScoredBatch sb = score_batch(arms, chooser.ensemble(), arm_of, batch, prompts, outs);
    for (size_t b = 0; b < batch.size(); ++b) {
      if (chooser.ensemble()) {  // per-prompt z-normalisation
        std::vector<std::vector<double>> mine;
        for (const auto& a : sb.per_arm)
          mine.emplace_back(a.begin() + static_cast<std::ptrdiff_t>(sb.offset[b]),
                            a.begin() + static_cast<std::ptrdiff_t>(sb.offset[b] + outs[b].size()));
        sb.scores[b] = ensemble_mean(mine);
      }
      const auto& sc = sb.scores[b];
      size_t best = 0;
      for (size_t k = 1; k < sc.size(); ++k)
        if (sc[k] > sc[best]) best = k;
      json responses = json::array();
      for (size_t k = 0; k < outs[b].size(); ++k) responses.push_back({{"text", outs[b][k].text}, {"score", sc[k]}});
      const size_t i = batch[b];
      json row = {{"index", i},
                  {"prompt", prompts[i].raw["prompt"]},
                  {"category", prompts[i].category},
                  {"rm", chooser.ensemble() ? chooser.strategy() : names[arm_of[b]]},
                  {"best", outs[b].empty() ? "" : outs[b][best].text},
                  {"best_score", sc.empty() ? 0.0 : sc[best]},
                  {"responses", responses}};
      if (!arm_scores[b].empty()) row["arm_scores"] = arm_scores[b];
      if (!feedback.empty() && chooser.uses_bandit()) {
        row["feedback"] = feedback[i];
        row["normalized_feedback"] = chooser.update(arm_of[b], rows[i], feedback[i]);
      }
      out += row.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    }
  }
  engine.stop();
  write_file_atomic(cfg.output, out);
  if (!cfg.save_state.empty()) write_file_atomic(cfg.save_state, chooser.save().dump(1) + "\n");
  LaserBonResult r;
  r.prompts = static_cast<int64_t>(prompts.size());
  for (const auto& a : arms) r.rm_tokens += a->tokens();
  if (!chooser.ensemble())  // this run's choices (a loaded state carries its training counts)
    for (size_t k = 0; k < chooser.counts().size(); ++k) r.arm_counts.push_back(chooser.counts()[k] - counts_before[k]);
  return r;
}

}  // namespace rmkit::select
