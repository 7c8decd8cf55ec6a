// LASeR's reward-model pool against independent computations: a local RM arm equals
// eval::score_singles, a DPO arm equals eval::implicit_rewards, a remote arm equals the local one
// through a real /v1/score; and the DPO step's gradient accumulated prompt by prompt equals one
// loss over all pairs computed sequence by sequence.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rmkit/core/error.h"
#include "rmkit/eval/scorer.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/select/policy_dpo.h"
#include "rmkit/select/rm_pool.h"
#include "rmkit/train/logprobs.h"
#include "rmkit/train/losses.h"
#include "rmkit/train/reward_model.h"
#include "serve/serve_fixture.h"
#include "test_util.h"

namespace rmkit::select {
namespace {

std::string stories() { return ::rmkit::testing::asset("models/stories260K/stories260K.bin"); }
std::string tok512() { return ::rmkit::testing::asset("models/stories260K/tok512.model"); }

std::vector<ScoreItem> items() {
  std::vector<ScoreItem> v;
  for (const auto& p : serve::testing::sample_pairs(3)) v.push_back({p.prompt, {p.chosen, p.rejected, "Once upon a time"}});
  return v;
}

TEST(LaserArms, SpecsParse) {
  auto a = ArmSpec::parse("A=/m/rm");
  EXPECT_EQ(a.kind, "rm");
  EXPECT_EQ(a.path, "/m/rm");
  a = ArmSpec::parse("d=policy=/p,reference=/r");
  EXPECT_EQ(a.kind, "dpo");
  EXPECT_EQ(a.policy, "/p");
  EXPECT_EQ(a.reference, "/r");
  EXPECT_EQ(ArmSpec::parse("l=policy=/p").kind, "logprob");
  EXPECT_EQ(ArmSpec::parse("u=http://127.0.0.1:9/v1/score").kind, "remote");
  EXPECT_THROW(ArmSpec::parse("noname"), UsageError);
  EXPECT_THROW(ArmSpec::parse("x=policy=/p,ref=/r"), UsageError);
  EXPECT_THROW(ArmSpec::parse("x="), UsageError);
}

TEST(LaserArms, LocalRewardModelEqualsScoreSingles) {
  RMKIT_REQUIRE_ASSET(stories());
  ArmOptions o;
  auto arm = make_arm(ArmSpec::parse("rm=" + serve::testing::rm_dir()), o);
  const auto its = items();
  const auto got = arm->score(its);
  auto rm = train::load_reward_model(serve::testing::rm_dir());
  const auto tmpl = eval::choose_template(rm.config, *rm.tokenizer, rm.meta.chat_template, "");
  std::vector<std::pair<text::Conversation, std::string>> singles;
  for (const auto& it : its)
    for (const auto& r : it.responses) singles.push_back({it.prompt, r});
  eval::ScoreOptions so;
  so.progress = false;
  so.max_length = rm.config.max_position_embeddings;
  const auto want = eval::score_singles(*rm.model, *rm.tokenizer, tmpl, singles, so);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << i;
  EXPECT_GT(arm->tokens(), 0);
}

TEST(LaserArms, DpoArmEqualsEvalImplicitRewards) {
  RMKIT_REQUIRE_ASSET(stories());
  // a reference that differs from the policy: stories260K with perturbed weights
  const std::string ref_dir = join_path(::rmkit::testing::temp_dir("laser_ref"), "ref");
  {
    auto lm = model::load_pretrained(stories(), tok512());
    torch::NoGradGuard ng;
    torch::manual_seed(3);
    for (auto& p : lm.model->parameters()) p.add_(torch::randn_like(p) * 0.02);
    model::save_pretrained(ref_dir, lm.config, *lm.model, lm.tokenizer.get());
  }
  ArmOptions o;
  o.tokenizer = tok512();
  o.chat_template = "plain";
  auto arm = make_arm(ArmSpec::parse("d=policy=" + stories() + ",reference=" + ref_dir), o);
  const auto its = items();
  const auto got = arm->score(its);
  auto pol = model::load_pretrained(stories(), tok512());
  auto ref = model::load_pretrained(ref_dir);
  const auto tmpl = text::ChatTemplate::named("plain");
  std::vector<data::PrefPair> pairs;
  for (const auto& it : its) {
    data::PrefPair p;
    p.prompt = it.prompt;
    p.chosen = it.responses[0];
    p.rejected = it.responses[1];
    pairs.push_back(p);
  }
  eval::ScoreOptions so;
  so.progress = false;
  so.max_length = pol.config.max_position_embeddings;
  const auto want = eval::implicit_rewards(*pol.model, *ref.model, *pol.tokenizer, tmpl, pairs, so);
  for (size_t i = 0; i < its.size(); ++i) {
    EXPECT_NEAR(got[3 * i], want.chosen[i], 1e-3 * std::max(1.0, std::abs(want.chosen[i]))) << i;
    EXPECT_NEAR(got[3 * i + 1], want.rejected[i], 1e-3 * std::max(1.0, std::abs(want.rejected[i]))) << i;
  }
  EXPECT_NE(got[0], 0.0);
}

TEST(LaserArms, RemoteArmEqualsLocalThroughV1Score) {
  RMKIT_REQUIRE_ASSET(stories());
  serve::testing::RunningServer srv(serve::testing::base_config());
  ArmOptions o;
  auto remote = make_arm(ArmSpec::parse("r=http://127.0.0.1:" + std::to_string(srv.port)), o);
  auto local = make_arm(ArmSpec::parse("l=" + serve::testing::rm_dir()), o);
  const auto its = items();
  const auto a = remote->score(its), b = local->score(its);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
  EXPECT_GT(remote->tokens(), 0);
}

TEST(LaserDpo, AccumulatedGradientEqualsOneLossOverAllPairs) {
  RMKIT_REQUIRE_ASSET(stories());
  auto pol = model::load_pretrained(stories(), tok512());
  auto ref = model::load_pretrained(stories(), tok512());
  {
    torch::NoGradGuard ng;
    torch::manual_seed(5);
    for (auto& p : ref.model->parameters()) p.add_(torch::randn_like(p) * 0.01);
  }
  // two prompts with different numbers of samples and pairs
  std::vector<PromptPairs> batch(2);
  batch[0].prompt = {1, 300, 301, 302};
  batch[0].responses = {{40, 41, 42}, {43, 44}, {45, 46, 47, 48, 49}};
  batch[0].pairs = {{0, 1}, {0, 2}};
  batch[1].prompt = {1, 310};
  batch[1].responses = {{50}, {51, 52, 53}};
  batch[1].pairs = {{1, 0}};
  const double beta = 0.1, lambda = 0.7;
  pol.model->zero_grad();
  const DpoStepResult r = accumulate_dpo(*pol.model, *ref.model, batch, beta, lambda, false);
  std::vector<torch::Tensor> g1;
  for (auto& p : pol.model->parameters()) g1.push_back(p.grad().clone());

  // independent: each sequence alone (no padding), then one mean over the three pairs
  pol.model->zero_grad();
  auto seq_lp = [&](model::CausalLMImpl& m, const std::vector<int32_t>& prompt, const std::vector<int32_t>& resp,
                    bool mean) {
    std::vector<int64_t> ids(prompt.begin(), prompt.end()), mask(prompt.size(), 0);
    for (int32_t t : resp) {
      ids.push_back(t);
      mask.push_back(1);
    }
    auto x = torch::tensor(ids).view({1, -1});
    auto mk = torch::tensor(mask).view({1, -1});
    model::ForwardInput in;
    in.input_ids = x;
    auto logits = m.forward(in);
    return mean ? train::sequence_logprob_mean(logits, x, mk) : train::sequence_logprob_sum(logits, x, mk);
  };
  torch::Tensor total = torch::zeros({});
  for (const auto& p : batch)
    for (const auto& pr : p.pairs) {
      torch::Tensor rw, rl;
      {
        torch::NoGradGuard ng;
        rw = seq_lp(*ref.model, p.prompt, p.responses[pr.chosen], false);
        rl = seq_lp(*ref.model, p.prompt, p.responses[pr.rejected], false);
      }
      auto w = seq_lp(*pol.model, p.prompt, p.responses[pr.chosen], false);
      auto l = seq_lp(*pol.model, p.prompt, p.responses[pr.rejected], false);
      auto nll = -seq_lp(*pol.model, p.prompt, p.responses[pr.chosen], true);
      total = total + (-torch::log_sigmoid(beta * ((w - rw) - (l - rl)))).sum() + lambda * nll.sum();
    }
  total = total / 3.0;
  total.backward();
  EXPECT_NEAR(r.loss, total.item<double>(), 1e-5);
  EXPECT_EQ(r.pairs, 3);
  size_t i = 0;
  for (auto& p : pol.model->parameters()) {
    const double scale = std::max(1e-6, g1[i].abs().max().item<double>());
    EXPECT_LE((p.grad() - g1[i]).abs().max().item<double>(), 1e-4 * scale) << i;
    ++i;
  }
}

}  // namespace
}  // namespace rmkit::select
