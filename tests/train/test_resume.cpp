// Exact resume: N steps uninterrupted vs. interrupted at step k and resumed from the checkpoint
// give the identical loss sequence (metrics.jsonl). Uses the real stories260K model, the tok512
// tokenizer and a slice of UltraFeedback; MLP head (dropout -> RNG state), grad accumulation and
// an epoch boundary inside the run exercise every piece of resumable state.
#include <gtest/gtest.h>

#include <filesystem>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "rmkit/train/reward_model.h"
#include "rmkit/train/train_checkpoint.h"
#include "rmkit/train/trainer.h"
#include "test_util.h"

namespace rmkit::train {
namespace {

std::string write_slice(const std::string& dir, size_t n) {
  std::string out, path = join_path(dir, "slice.jsonl");
  rmkit::for_each_line(rmkit::testing::asset("prefs/ultrafeedback_sample.jsonl.gz"),
                       [&](const std::string& line, size_t no) {
                         out += line + "\n";
                         return no < n;
                       });
  rmkit::write_file_atomic(path, out);
  return path;
}

TrainerOptions base_options(const std::string& data, const std::string& out) {
  TrainerOptions o;
  o.model = rmkit::testing::asset("models/stories260K/stories260K.bin");
  o.tokenizer = rmkit::testing::asset("models/stories260K/tok512.bin");
  o.data = {data};
  o.output = out;
  o.chat_template = "plain";
  o.max_length = 64;
  o.batch_size = 4;
  o.grad_accum = 2;
  o.lr = 2e-3;
  o.warmup_ratio = 0.25;
  o.val_fraction = 0.1;
  o.max_steps = 10;
  o.eval_every = 4;
  o.save_every = 4;
  o.head_type = "mlp";
  o.progress = "off";
  o.seed = 3;
  return o;
}

std::vector<double> losses(const std::string& out) {
  std::vector<double> v;
  for (const auto& r : MetricsLog::read(join_path(out, "metrics.jsonl"))) v.push_back(r.at("loss").get<double>());
  return v;
}

TEST(Resume, InterruptedRunContinuesExactly) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("resume");
  std::string data = write_slice(dir, 40);  // ~36 train pairs = 9 batches: epoch 2 starts at step 5
  auto quiet = [](const std::string&) {};

  std::string out_a = join_path(dir, "a");
  Trainer a(base_options(data, out_a));
  a.set_logger(quiet);
  auto ra = a.train();
  EXPECT_EQ(ra.steps, 10);
  auto la = losses(out_a);
  ASSERT_EQ(la.size(), 10u);

  // interrupted after 6 steps; the newest checkpoint is step-4, so steps 5-6 are redone
  std::string out_b = join_path(dir, "b");
  auto ob = base_options(data, out_b);
  ob.stop_after_steps = 6;
  {
    Trainer b(ob);
    b.set_logger(quiet);
    auto rb = b.train();
    EXPECT_TRUE(rb.stopped_early);
  }
  EXPECT_FALSE(rmkit::path_exists(join_path(out_b, "model.safetensors")));
  EXPECT_EQ(losses(out_b).size(), 6u);
  ASSERT_TRUE(rmkit::is_directory(join_path(out_b, "checkpoints/step-4")));
  ob.stop_after_steps = 0;
  ob.resume = "latest";
  Trainer b2(ob);
  b2.set_logger(quiet);
  auto rb2 = b2.train();
  EXPECT_EQ(rb2.steps, 10);
  auto lb = losses(out_b);
  ASSERT_EQ(lb.size(), 10u);  // lines of steps 5-6 from the interrupted run were dropped
  for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;
  // the losses actually change (not a constant sequence that would match trivially)
  EXPECT_NE(la.front(), la.back());

  // both final models give identical rewards
  auto ma = load_reward_model(out_a), mb = load_reward_model(out_b);
  ma.model->eval();
  mb.model->eval();
  torch::NoGradGuard ng;
  auto ids = torch::tensor({1, 403, 407, 261, 378}, torch::kLong).unsqueeze(0);
  auto mask = torch::ones({1, 5}, torch::kLong);
  EXPECT_EQ(ma.model->forward(ids, mask).rewards.item<double>(), mb.model->forward(ids, mask).rewards.item<double>());
  // keep_checkpoints = 2: step-4 and step-8 remain
  auto ck = list_checkpoints(join_path(out_a, "checkpoints"));
  ASSERT_EQ(ck.size(), 2u);
  EXPECT_EQ(ck[0].first, 4);
  EXPECT_EQ(ck[1].first, 8);
  std::filesystem::remove_all(dir);
}

TEST(Resume, MismatchedRunIsRefused) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("resume_mismatch");
  std::string data = write_slice(dir, 40);
  auto o = base_options(data, join_path(dir, "out"));
  o.max_steps = 4;
  o.stop_after_steps = 0;
  Trainer t(o);
  t.set_logger([](const std::string&) {});
  t.train();
  o.resume = join_path(o.output, "checkpoints/step-4");
  o.batch_size = 2;  // a different run
  Trainer t2(o);
  t2.set_logger([](const std::string&) {});
  try {
    t2.train();
    FAIL() << "resume with another batch size must fail";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("batch size"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// Regenerated annotations (here one teacher score) are other training targets for margin and
// distillation losses: --resume refuses them by name, though prompts and replies are unchanged.
TEST(Resume, ChangedAnnotationsAreRefused) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("resume_annotations");
  auto rows = [](double first_score) {
    std::string out;
    for (int i = 0; i < 40; ++i)
      out += "{\"prompt\":\"Tell a story " + std::to_string(i) +
             "\",\"chosen\":\"Once upon a time there was a cat.\",\"rejected\":\"cat a was there time\"," +
             "\"score_chosen\":" + std::to_string(i == 0 ? first_score : 8.0) + ",\"score_rejected\":2}\n";
    return out;
  };
  const std::string data = join_path(dir, "scored.jsonl");
  rmkit::write_file_atomic(data, rows(8.0));
  auto o = base_options(data, join_path(dir, "out"));
  o.loss = "bt-margin";
  o.max_steps = 4;
  o.stop_after_steps = 0;
  Trainer t(o);
  t.set_logger([](const std::string&) {});
  t.train();
  rmkit::write_file_atomic(data, rows(9.0));  // one score regenerated
  o.resume = join_path(o.output, "checkpoints/step-4");
  Trainer t2(o);
  t2.set_logger([](const std::string&) {});
  try {
    t2.train();
    FAIL() << "resume on changed scores must fail";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("annotations"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rmkit::train
