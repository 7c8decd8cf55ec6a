// Run-directory pieces of the trainer (issue 18): checkpoint rotation and `latest` count only the
// run's own checkpoints, the directory lock names its holder, non-finite parameters after an
// optimizer step stop the run without saving them, and a reward model must carry its head unless
// the caller allows a fresh one (training from a base model).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/train/optim.h"
#include "rmkit/train/reward_model.h"
#include "rmkit/train/run_dir.h"
#include "rmkit/train/train_checkpoint.h"
#include "rmkit/train/trainer.h"
#include "test_util.h"

namespace rmkit::train {
namespace {

namespace fs = std::filesystem;
const std::string kBin = "models/stories260K/stories260K.bin";
const std::string kTokBin = "models/stories260K/tok512.bin";

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& [step, path] : list_checkpoints(dir)) v.push_back(file_name(path));
  return v;
}

TEST(RunDir, RotationAndLatestCountOnlyTheRunsOwnCheckpoints) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  auto m = load_reward_model(rmkit::testing::asset(kBin), rmkit::testing::asset(kTokBin), HeadConfig(),
                             /*require_head=*/false);
  auto groups = split_param_groups(m.model->named_trainable_parameters());
  OptimConfig oc;
  auto opt = make_adamw(groups, oc);
  std::string dir = rmkit::testing::temp_dir("rotation");
  TrainerState foreign;
  foreign.run_id = "other-run";
  foreign.step = 50;
  save_train_checkpoint(dir, *m.model, m.tokenizer.get(), RewardModelMeta(), *opt, foreign, 2);
  TrainerState own;
  own.run_id = "this-run";
  for (int64_t s = 1; s <= 3; ++s) {
    own.step = s;
    save_train_checkpoint(dir, *m.model, m.tokenizer.get(), RewardModelMeta(), *opt, own, 2);
  }
  // the newest two of this run are kept; the other run's step-50 is neither counted nor removed
  EXPECT_EQ(names(dir), (std::vector<std::string>{"step-2", "step-3", "step-50"}));
  EXPECT_EQ(file_name(latest_checkpoint(dir, "this-run")), "step-3");
  EXPECT_EQ(file_name(latest_checkpoint(dir, "other-run")), "step-50");
  fs::remove_all(dir);
}

TEST(RunDir, LockNamesItsHolder) {
  std::string dir = rmkit::testing::temp_dir("lock");
  {
    RunLock first(dir);
    try {
      RunLock second(dir);
      ADD_FAILURE() << "second lock acquired";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(::getpid())), std::string::npos) << e.what();
    }
  }
  RunLock again(dir);  // released with its holder
  fs::remove_all(dir);
}

TEST(RunDir, NonFiniteParametersStopTheRunWithoutSavingThem) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  std::string dir = rmkit::testing::temp_dir("nonfinite");
  std::string data = join_path(dir, "d.jsonl"), text;
  rmkit::for_each_line(rmkit::testing::asset("prefs/ultrafeedback_sample.jsonl.gz"), [&](const std::string& l, size_t n) {
    text += l + "\n";
    return n < 24;
  });
  write_file_atomic(data, text);
  TrainerOptions o;
  o.model = rmkit::testing::asset(kBin);
  o.tokenizer = rmkit::testing::asset(kTokBin);
  o.data = {data};
  o.output = join_path(dir, "out");
  o.chat_template = "plain";
  o.max_length = 64;
  o.batch_size = 4;
  o.lr = 1e-3;
  o.val_fraction = 0.2;
  o.eval_every = 1;
  o.max_steps = 4;
  o.save_every = 1;
  o.keep_checkpoints = 0;
  o.progress = "off";
  o.inject_nonfinite_param_at_step = 3;
  Trainer t(o);
  t.set_logger([](const std::string&) {});
  try {
    t.train();
    ADD_FAILURE() << "no error";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("step 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("step-2"), std::string::npos) << e.what();  // last good checkpoint
  }
  EXPECT_EQ(names(join_path(o.output, "checkpoints")), (std::vector<std::string>{"step-1", "step-2"}));
  EXPECT_FALSE(path_exists(join_path(o.output, "model.safetensors")));
  // best/ holds the best of steps 1-2 only: finite
  if (path_exists(join_path(o.output, "best"))) {
    auto best = load_reward_model(join_path(o.output, "best"));
    for (const auto& p : best.model->parameters()) EXPECT_TRUE(p.isfinite().all().item<bool>());
  }
  fs::remove_all(dir);
}

// A kill -9 during the save of best/ (between its two renames) and during the in-place save of the
// run directory's own model (new rmkit.json moved in, weights not yet): the next start-up
// (recover_run_saves, then remove_run_temps) installs the complete new copies, and each directory
// then loads as one model whose rmkit.json step matches its weights.
TEST(RunDir, StartUpFinishesASaveAKillInterrupted) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  auto m = load_reward_model(rmkit::testing::asset(kBin), rmkit::testing::asset(kTokBin), HeadConfig(),
                             /*require_head=*/false);
  auto save_step = [&](const std::string& dir, int64_t step) {
    {
      torch::NoGradGuard ng;
      for (auto& kv : m.model->named_parameters(true))
        if (kv.key().rfind("score", 0) == 0) kv.value().fill_(static_cast<double>(step));
    }
    RewardModelMeta meta;
    meta.step = step;
    save_reward_model(dir, *m.model, m.tokenizer.get(), meta);
  };
  const std::string root = rmkit::testing::temp_dir("interrupted_save");
  const std::string out = join_path(root, "out"), best = join_path(out, "best");
  make_dirs(out);
  write_file_atomic(join_path(out, "run.json"), "{\"run_id\": \"r\"}\n");
  save_step(best, 1);
  save_step(out, 1);
  // step 3 written completely, then the kill: best/ moved aside but the new copy not yet renamed in
  save_step(join_path(root, "s1"), 3);
  fs::rename(best, join_path(out, ".best.old-999999"));
  fs::rename(join_path(root, "s1"), join_path(out, ".best.new-999999"));
  make_dirs(join_path(out, ".best.tmp-999998"));  // an earlier save killed while writing
  // ... and the run's own model: old weights removed, the new rmkit.json already moved in
  save_step(join_path(root, "s2"), 3);
  const std::string staged = join_path(root, ".out.new-999999");
  fs::rename(join_path(root, "s2"), staged);
  fs::remove(join_path(out, "model.safetensors"));
  fs::rename(join_path(staged, "rmkit.json"), join_path(out, "rmkit.json"));

  EXPECT_EQ(recover_run_saves(out).size(), 3u);  // best/ installed, its old copy removed, out/ finished
  remove_run_temps(out);
  for (const std::string& dir : {best, out}) {
    SCOPED_TRACE(dir);
    auto loaded = load_reward_model(dir);
    EXPECT_EQ(loaded.meta.step, 3);
    auto w = loaded.model->head_state().at("score.weight");
    EXPECT_TRUE(torch::equal(w, torch::full_like(w, 3.0)));
  }
  EXPECT_EQ(read_file(join_path(out, "run.json")), "{\"run_id\": \"r\"}\n");
  std::vector<std::string> left;
  for (const std::string& dir : {root, out})
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string()[0] == '.' && e.path().filename() != ".rmkit.lock")
        left.push_back(e.path().string());
  EXPECT_TRUE(left.empty()) << left.front();

  // a later save over the installed copies keeps them whole: best/ swapped, out/ file by file
  save_step(best, 5);
  save_step(out, 5);
  for (const std::string& dir : {best, out}) {
    auto loaded = load_reward_model(dir);
    EXPECT_EQ(loaded.meta.step, 5);
    EXPECT_TRUE(torch::equal(loaded.model->head_state().at("score.weight"), torch::full({1, 64}, 5.0)));
  }
  fs::remove_all(root);
}

TEST(RunDir, RewardModelMustCarryItsHeadUnlessAllowed) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset(kBin));
  try {
    load_reward_model(rmkit::testing::asset(kBin), rmkit::testing::asset(kTokBin));
    ADD_FAILURE() << "a base model loaded as a reward model";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("reward head"), std::string::npos) << e.what();
  }
  auto m = load_reward_model(rmkit::testing::asset(kBin), rmkit::testing::asset(kTokBin), HeadConfig(),
                             /*require_head=*/false);
  EXPECT_FALSE(m.has_head);
}

}  // namespace
}  // namespace rmkit::train
