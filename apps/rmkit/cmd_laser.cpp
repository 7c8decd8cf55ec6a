// rmkit laser train | bon: LASeR (src/rmkit/select/laser_train.h, laser_bon.h).
#include <cstdlib>
#include <iostream>

#include "bandit_options.h"
#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/model/runtime.h"
#include "rmkit/select/laser_bon.h"
#include "rmkit/select/laser_train.h"

namespace rmkit::cli {
namespace {

using namespace rmkit::select;

std::vector<Command>& laser_verbs() {
  static std::vector<Command> v;
  return v;
}

// Options both verbs share: policy, reward models, arm policy, sampling.
std::vector<OptionSpec> shared_options() {
  return {
      {"policy", OptKind::String, "", "policy model directory or llama2.c .bin", true},
      {"tokenizer", OptKind::String, "", "tokenizer (required for llama2.c .bin models)"},
      {"chat-template", OptKind::String, "auto", "chat template of the policy (and of local reward models)"},
      {"rm", OptKind::String, "", "an arm, NAME=SPEC (repeatable): DIR | policy=DIR[,reference=DIR] | http(s)://.../v1/score", true, true},
      {"rm-api-key-env", OptKind::String, "RMKIT_RM_API_KEY", "environment variable with the Bearer key of remote arms (never printed)"},
      {"prompts", OptKind::String, "", "JSONL rows {\"prompt\": str | messages, \"category\"?}", true},
      {"bandit", OptKind::String, "linucb", "linucb | thompson | exp3 | epsilon-greedy | ucb1 | random | fixed:NAME | sequential | ensemble-mean | ensemble-agreement"},
      {"alpha", OptKind::Float, "0.1", "LinUCB exploration weight", false, false, "[0,)"},
      {"lambda", OptKind::Float, "1", "ridge prior A_k = lambda I (LinUCB, Thompson)", false, false, "(0,)"},
      {"v", OptKind::Float, "1", "Thompson posterior scale", false, false, "(0,)"},
      {"gamma", OptKind::Float, "0.1", "Exp3 exploration mix", false, false, "(0,1]"},
      {"epsilon", OptKind::Float, "0.1", "epsilon-greedy exploration probability", false, false, "[0,1]"},
      {"min-pulls-every", OptKind::Int, "0", "collapse guard: every arm at least once per N rounds (0 = off)", false, false, "[0,)"},
      {"norm-low", OptKind::Float, "20", "reward normaliser: low percentile", false, false, "[0,100]"},
      {"norm-high", OptKind::Float, "80", "reward normaliser: high percentile", false, false, "[0,100]"},
      {"norm-min-history", OptKind::Int, "20", "reward normaliser: history length before mapping", false, false, "[1,)"},
      {"norm-fallback", OptKind::Float, "0.5", "reward normaliser: value before min-history and when the percentiles are equal"},
      {"context", OptKind::String, "last-hidden", "policy context: last-hidden | mean-hidden | mean-embedding", false, false, "last-hidden|mean-hidden|mean-embedding"},
      {"l2-normalize", OptKind::Flag, "", "L2-normalise contexts"},
      {"project-dim", OptKind::Int, "0", "seeded random projection of contexts to this many dimensions (0 = off)", false, false, "[0,)"},
      {"temperature", OptKind::Float, "0.8", "sampling temperature", false, false, "[0,100]"},
      {"top-p", OptKind::Float, "1", "nucleus sampling mass", false, false, "(0,1]"},
      {"max-new-tokens", OptKind::Int, "150", "tokens per sample", false, false, "[1,)"},
      {"seed", OptKind::Int, "0", "seed of sampling, batch order, bandit and adapters", false, false, "[0,)"},
      {"kv-cache-mb", OptKind::Int, "2048", "generation engine KV-cache budget", false, false, "[1,)"},
      {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
  };
}

void fill_shared(const Options& o, LaserRunConfig* c) {
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  c->policy = o.str("policy");
  c->tokenizer = o.has("tokenizer") ? o.str("tokenizer") : "";
  c->chat_template = o.str("chat-template");
  c->prompts = o.str("prompts");
  for (const auto& s : o.list("rm")) c->rms.push_back(ArmSpec::parse(s));
  c->arm_options.tokenizer = c->tokenizer;
  c->arm_options.chat_template = c->chat_template;
  if (const char* k = std::getenv(o.str("rm-api-key-env").c_str())) c->arm_options.api_key = k;
  c->arm.strategy = o.str("bandit");
  c->arm.bandit = bandit_params_from(o);
  c->arm.normalizer = normalizer_params_from(o);
  c->arm.l2_normalize = o.flag("l2-normalize");
  c->arm.project_dim = static_cast<size_t>(o.integer("project-dim"));
  c->arm.project_seed = static_cast<uint64_t>(o.integer("seed"));
  c->context = o.str("context");
  c->temperature = o.number("temperature");
  c->top_p = o.number("top-p");
  c->max_new_tokens = o.integer("max-new-tokens");
  c->seed = static_cast<uint64_t>(o.integer("seed"));
  c->kv_cache_mb = o.integer("kv-cache-mb");
}

std::string counts_text(const std::vector<ArmSpec>& rms, const std::vector<uint64_t>& counts) {
  std::string s;
  for (size_t k = 0; k < rms.size() && k < counts.size(); ++k)
    s += (s.empty() ? "" : ", ") + rms[k].name + " " + std::to_string(counts[k]);
  return s.empty() ? "(ensemble: every arm scored)" : s;
}

int run_train(const Options& o) {
  LaserTrainConfig c;
  fill_shared(o, &c);
  c.output = o.str("output");
  c.granularity = o.str("granularity");
  c.iterations = o.integer("iterations");
  c.batch_size = o.integer("batch-size");
  c.n = o.integer("n");
  c.pairs = o.str("pairs");
  c.top_pairs = o.integer("top-pairs");
  c.beta = o.number("beta");
  c.nll_weight = o.number("nll-weight");
  c.optim.lr = o.number("lr");
  c.optim.weight_decay = o.number("weight-decay");
  c.optim.max_grad_norm = o.number("max-grad-norm");
  c.warmup_ratio = o.number("warmup-ratio");
  c.lr_schedule = o.str("lr-schedule");
  c.lora = o.has("lora") ? o.str("lora") : "";
  c.bf16 = o.flag("bf16");
  c.resume = o.flag("resume");
  c.stop_after = o.integer("stop-after");
  c.progress = o.str("progress");
  for (const auto& s : c.rms) std::cerr << "laser: arm " << s.describe() << "\n";
  const LaserTrainResult r = laser_train(c);
  if (!r.finished) {
    std::cerr << "laser train: stopped after " << c.stop_after << " iterations (" << r.steps << " steps); checkpoint in "
              << c.output << "/checkpoint: continue with --resume\n";
    return 0;
  }
  std::cerr << "laser train: " << r.steps << " steps in " << r.seconds << " s; arm choices: " << counts_text(c.rms, r.arm_counts)
            << "; RM tokens " << r.rm_tokens << ", generated tokens " << r.generated_tokens << "; policy in " << c.output
            << "/policy, report " << c.output << "/report.html\n";
  return 0;
}

int run_bon(const Options& o) {
  LaserBonConfig c;
  fill_shared(o, &c);
  c.output = o.str("output");
  c.n = o.integer("n");
  c.bandit_state = o.has("bandit-state") ? o.str("bandit-state") : "";
  c.feedback = o.has("feedback") ? o.str("feedback") : "";
  c.save_state = o.has("save-state") ? o.str("save-state") : "";
  const LaserBonResult r = laser_bon(c);
  std::cerr << "laser bon: " << r.prompts << " prompts; arm choices: " << counts_text(c.rms, r.arm_counts) << "; RM tokens "
            << r.rm_tokens << "; wrote " << c.output << "\n";
  return 0;
}

std::vector<OptionSpec> train_options() {
  auto v = shared_options();
  std::vector<OptionSpec> more = {
      {"output", OptKind::String, "", "output directory: policy/, bandit.json, metrics.jsonl, report.html, checkpoint/", true},
      {"granularity", OptKind::String, "batch", "one RM per batch, or per prompt (instance)", false, false, "batch|instance"},
      {"iterations", OptKind::Int, "10", "iterations (the reference is re-synced after each)", false, false, "[1,)"},
      {"batch-size", OptKind::Int, "16", "prompts per optimisation step", false, false, "[1,)"},
      {"n", OptKind::Int, "30", "samples per prompt", false, false, "[2,256]"},
      {"pairs", OptKind::String, "top-vs-rest", "top-vs-rest (the top sample vs ranks 2..P+1) | best-worst", false, false, "top-vs-rest|best-worst"},
      {"top-pairs", OptKind::Int, "10", "P of top-vs-rest", false, false, "[1,)"},
      {"beta", OptKind::Float, "0.1", "DPO beta", false, false, "(0,)"},
      {"nll-weight", OptKind::Float, "1", "lambda of the chosen responses' NLL (token mean)", false, false, "[0,)"},
      {"lr", OptKind::Float, "5e-6", "AdamW learning rate", false, false, "(0,)"},
      {"weight-decay", OptKind::Float, "0", "AdamW weight decay", false, false, "[0,)"},
      {"max-grad-norm", OptKind::Float, "1", "gradient clipping (0 = off)", false, false, "[0,)"},
      {"warmup-ratio", OptKind::Float, "0.1", "linear warmup fraction of the steps", false, false, "[0,1]"},
      {"lr-schedule", OptKind::String, "constant", "after warmup: constant | linear | cosine", false, false, "constant|linear|cosine"},
      {"lora", OptKind::String, "", "train LoRA adapters only, e.g. r=16,alpha=32,dropout=0.1,targets=q,v (merged each iteration)"},
      {"bf16", OptKind::Flag, "", "bf16 autocast for the policy step"},
      {"resume", OptKind::Flag, "", "continue from OUTPUT/checkpoint (same arm sequence and losses)"},
      {"stop-after", OptKind::Int, "0", "stop after this many iterations, resumable with --resume (0 = run all)", false, false, "[0,)"},
      {"progress", OptKind::String, "auto", "auto | lines | off", false, false, "auto|lines|off"},
  };
  v.insert(v.end(), more.begin(), more.end());
  return v;
}

std::vector<OptionSpec> bon_options() {
  auto v = shared_options();
  for (auto& s : v)
    if (s.name == "bandit") s.help += " (ignored with --bandit-state: the state's strategy is used)";
  std::vector<OptionSpec> more = {
      {"output", OptKind::String, "", "JSONL: prompt, chosen RM, every response with its score, the best", true},
      {"n", OptKind::Int, "16", "samples per prompt", false, false, "[1,256]"},
      {"bandit-state", OptKind::String, "", "bandit.json from laser train (greedy unless --feedback)"},
      {"feedback", OptKind::String, "", "JSONL {\"reward\"} per prompt for the returned response: keep learning online"},
      {"save-state", OptKind::String, "", "write the bandit state here afterwards"},
  };
  v.insert(v.end(), more.begin(), more.end());
  return v;
}

CommandRegistrar reg({"laser", "LASeR: choose among reward models with a bandit in iterative DPO (train) and best-of-n (bon)",
                      {}, {}, [](const Options&) { return 2; }, false, &laser_verbs()});

struct VerbRegistrar {
  explicit VerbRegistrar(Command c) { laser_verbs().push_back(std::move(c)); }
};
VerbRegistrar train_verb({"train", "iterative DPO of a policy, one bandit-chosen RM per batch or prompt", train_options(), {},
                          run_train, /*print_config=*/true});
VerbRegistrar bon_verb({"bon", "best-of-n with a bandit-routed RM per prompt", bon_options(), {}, run_bon, true});

}  // namespace
}  // namespace rmkit::cli
