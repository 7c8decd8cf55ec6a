// Trainer behaviour: metrics.jsonl content, best model on validation, NaN stop keeping the last
// checkpoint, data-requirement errors, teacher vocabulary check; progress and metrics helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <filesystem>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "rmkit/core/progress.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/registry.h"
#include "rmkit/model/safetensors.h"
#include "rmkit/text/tokenizer.h"
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

TrainerOptions small(const std::string& data, const std::string& out) {
  TrainerOptions o;
  o.model = rmkit::testing::asset("models/stories260K/stories260K.bin");
  o.tokenizer = rmkit::testing::asset("models/stories260K/tok512.bin");
  o.data = {data};
  o.output = out;
  o.chat_template = "plain";
  o.max_length = 48;
  o.batch_size = 4;
  o.lr = 1e-3;
  o.val_fraction = 0.2;
  o.max_steps = 6;
  o.progress = "off";
  return o;
}

const auto quiet = [](const std::string&) {};

TEST(Trainer, MetricsBestModelAndFinalModel) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_metrics");
  auto o = small(write_slice(dir, 30), join_path(dir, "out"));
  o.eval_every = 3;
  o.loss = "bt:1,center:0.01";
  Trainer t(o);
  t.set_logger(quiet);
  t.prepare();
  const auto& s = t.data_summary();
  EXPECT_EQ(s.rows, 30u);
  EXPECT_EQ(s.train_pairs + s.val_pairs, s.kept);
  EXPECT_GT(s.val_pairs, 0u);
  EXPECT_GT(s.truncated, 0u);  // UltraFeedback replies are far longer than 48 tokens
  EXPECT_GT(s.padding_fraction, 0.0);
  EXPECT_LT(s.padding_fraction, 1.0);
  auto r = t.train();
  EXPECT_EQ(r.steps, 6);
  auto recs = MetricsLog::read(join_path(o.output, "metrics.jsonl"));
  ASSERT_EQ(recs.size(), 6u);
  for (size_t i = 0; i < recs.size(); ++i) {
    const auto& m = recs[i];
    EXPECT_EQ(m["step"], static_cast<int>(i + 1));
    for (const char* k : {"epoch", "loss", "loss_bt", "loss_center", "accuracy", "margin", "reward_mean",
                          "reward_std", "lr", "tokens_per_s", "padding_fraction"})
      EXPECT_TRUE(m.contains(k)) << k << " missing at step " << i + 1;
    // total = bt + 0.01 center
    EXPECT_NEAR(m["loss"].get<double>(), m["loss_bt"].get<double>() + 0.01 * m["loss_center"].get<double>(), 1e-5);
    EXPECT_GT(m["tokens_per_s"].get<double>(), 0);
    bool eval_step = (i + 1) % 3 == 0;
    EXPECT_EQ(m.contains("val_accuracy"), eval_step) << "step " << i + 1;
    if (eval_step) EXPECT_TRUE(m.contains("val_loss"));
  }
  // cosine with 3 % warmup of 6 steps rounds to 0 warmup steps: lr(0) = base
  EXPECT_DOUBLE_EQ(recs[0]["lr"].get<double>(), 1e-3);
  EXPECT_LT(recs[5]["lr"].get<double>(), recs[1]["lr"].get<double>());
  // best model = the eval with the highest accuracy
  double best = -1;
  int best_step = 0;
  for (const auto& m : recs)
    if (m.contains("val_accuracy") && m["val_accuracy"].get<double>() > best) {
      best = m["val_accuracy"];
      best_step = m["step"];
    }
  EXPECT_DOUBLE_EQ(r.best_val_accuracy, best);
  EXPECT_EQ(r.best_step, best_step);
  auto best_meta = nlohmann::json::parse(rmkit::read_file(join_path(o.output, "best/rmkit.json")));
  EXPECT_EQ(best_meta["step"], best_step);
  // final model in OUT with calibration metadata
  auto meta = nlohmann::json::parse(rmkit::read_file(join_path(o.output, "rmkit.json")));
  EXPECT_EQ(meta["step"], 6);
  EXPECT_EQ(meta["chat_template"], "plain");
  EXPECT_EQ(meta["calibration"]["count"], 2 * static_cast<int>(s.val_pairs));
  EXPECT_DOUBLE_EQ(meta["calibration"]["reward_mean"].get<double>(), recs[5]["val_reward_mean"].get<double>());
  EXPECT_EQ(meta["data_hash"], s.data_hash);
  auto cfg = nlohmann::json::parse(rmkit::read_file(join_path(o.output, "config.json")));
  EXPECT_EQ(cfg["architectures"][0], "LlamaForSequenceClassification");
  EXPECT_EQ(cfg["num_labels"], 1);
  std::filesystem::remove_all(dir);
}

TEST(Trainer, NanLossStopsAndKeepsLastCheckpoint) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_nan");
  auto o = small(write_slice(dir, 30), join_path(dir, "out"));
  o.save_every = 2;
  o.keep_checkpoints = 1;
  o.inject_nan_at_step = 5;
  Trainer t(o);
  t.set_logger(quiet);
  try {
    t.train();
    FAIL() << "a NaN loss must stop training";
  } catch (const NumericError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("step 5"), std::string::npos) << msg;
    EXPECT_NE(msg.find("step-4"), std::string::npos) << msg;
  }
  EXPECT_EQ(MetricsLog::read(join_path(o.output, "metrics.jsonl")).size(), 4u);
  EXPECT_FALSE(rmkit::path_exists(join_path(o.output, "model.safetensors")));  // no final model
  auto ck = list_checkpoints(join_path(o.output, "checkpoints"));
  ASSERT_EQ(ck.size(), 1u);
  EXPECT_EQ(ck[0].first, 4);
  auto st = nlohmann::json::parse(rmkit::read_file(join_path(ck[0].second, "trainer_state.json")));
  EXPECT_EQ(st["step"], 4);
  auto m = load_reward_model(ck[0].second);  // loadable, finite rewards
  torch::NoGradGuard ng;
  auto r = m.model->forward(torch::tensor({1, 403, 407}, torch::kLong).unsqueeze(0), torch::ones({1, 3}, torch::kLong));
  EXPECT_TRUE(std::isfinite(r.rewards.item<double>()));
  // a real divergence path: absurd lr on a frozen backbone is caught too (loss or grad norm)
  std::filesystem::remove_all(dir);
}

TEST(Trainer, LossDataRequirementsAreChecked) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_req");
  // RMB-style rows without scores: margin-mse cannot run
  std::string path = join_path(dir, "noscore.jsonl");
  rmkit::write_file_atomic(path,
                           "{\"prompt\":\"Hi\",\"chosen\":\"Hello there.\",\"rejected\":\"there Hello\"}\n"
                           "{\"prompt\":\"Yo\",\"chosen\":\"Fine, thanks.\",\"rejected\":\"thanks Fine\"}\n");
  auto o = small(path, join_path(dir, "out"));
  o.val_fraction = 0;
  o.loss = "margin-mse";
  {
    Trainer t(o);
    t.set_logger(quiet);
    try {
      t.prepare();
      FAIL();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("2 of 2 training pairs lack them"), std::string::npos) << e.what();
    }
  }
  o.loss = "bt,kl:0.5";
  {
    Trainer t(o);
    t.set_logger(quiet);
    EXPECT_THROW(t.prepare(), UsageError);  // kl without --teacher-model
  }
  // teacher with another vocabulary (a tiny model with the GPT-2 tokenizer)
  model::ModelConfig c;
  c.family = "llama";
  c.model_type = "llama";
  c.architectures = {"LlamaForCausalLM"};
  c.vocab_size = 50257;
  c.hidden_size = 8;
  c.intermediate_size = 8;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  auto teacher = model::create_model(c);
  auto gtok = text::load_tokenizer(rmkit::testing::asset("tokenizers/gpt2/hf/tokenizer.json"));
  std::string tdir = join_path(dir, "teacher");
  model::save_pretrained(tdir, c, *teacher, gtok.get());
  o.teacher_model = tdir;
  {
    Trainer t(o);
    t.set_logger(quiet);
    try {
      t.prepare();
      FAIL();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("same tokenizer"), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

// Partly annotated data that the start-up check accepts trains every step, whatever rows a batch
// draws: attributes on some rows only (3, 2 or none), and bt-margin with a margin on some rows and
// both scores on the others.
// With gradient accumulation an epoch's last step takes only the micro-batches left in that epoch:
// 7 batches, --grad-accum 2, 1 epoch = 4 steps of 2, 2, 2 and 1 micro-batches, and the last step
// ends exactly at epoch 1.0 (it used to borrow the first batch of epoch 2).
TEST(Trainer, GradAccumWindowsEndAtTheEpoch) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_accum_epoch");
  std::string rows;
  for (int i = 0; i < 14; ++i)
    rows += "{\"prompt\":\"Tell a story " + std::to_string(i) +
            "\",\"chosen\":\"Once upon a time there was a cat.\",\"rejected\":\"cat a was there time\"}\n";
  const std::string path = join_path(dir, "d.jsonl");
  rmkit::write_file_atomic(path, rows);
  auto o = small(path, join_path(dir, "out"));
  o.val_fraction = 0;
  o.batch_size = 2;  // 7 batches
  o.grad_accum = 2;
  o.epochs = 2;
  o.max_steps = 0;
  Trainer t(o);
  t.set_logger(quiet);
  t.train();
  auto recs = MetricsLog::read(join_path(o.output, "metrics.jsonl"));
  ASSERT_EQ(recs.size(), 8u);  // ceil(7 / 2) = 4 steps per epoch
  const std::vector<double> epochs = {2 / 7.0, 4 / 7.0, 6 / 7.0, 1.0, 1 + 2 / 7.0, 1 + 4 / 7.0, 1 + 6 / 7.0, 2.0};
  for (size_t i = 0; i < recs.size(); ++i) EXPECT_NEAR(recs[i]["epoch"].get<double>(), epochs[i], 1e-9) << recs[i].dump();
  std::filesystem::remove_all(dir);
}

// Pairs whose replies differ only past the truncation point are said (counted and logged), not
// silently trained on as if they were pairs: 4 of the 10 rows share their first 40 characters.
TEST(Trainer, PairsIdenticalAfterTruncationAreCounted) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_identical");
  const std::string shared = "Once upon a time there was a little cat who";
  std::string rows;
  for (int i = 0; i < 10; ++i)
    rows += "{\"prompt\":\"Tell a story " + std::to_string(i) + "\",\"chosen\":\"" +
            (i < 4 ? shared + " sang." : "A dog ran.") + "\",\"rejected\":\"" + (i < 4 ? shared + " slept." : "cat") + "\"}\n";
  const std::string path = join_path(dir, "d.jsonl");
  rmkit::write_file_atomic(path, rows);
  auto o = small(path, join_path(dir, "out"));
  o.max_length = 16;  // "Tell a story N" + a few tokens of the replies
  std::vector<std::string> lines;
  Trainer t(o);
  t.set_logger([&](const std::string& l) { lines.push_back(l); });
  t.prepare();
  EXPECT_EQ(t.data_summary().identical_after_truncation, 4u);
  bool warned = false;
  for (const auto& l : lines) warned |= l.find("4 pairs have identical chosen and rejected tokens") != std::string::npos;
  EXPECT_TRUE(warned);
  o.max_length = 256;  // long enough: none
  o.output = join_path(dir, "out2");
  Trainer t2(o);
  t2.set_logger(quiet);
  t2.prepare();
  EXPECT_EQ(t2.data_summary().identical_after_truncation, 0u);
}

TEST(Trainer, PartlyAnnotatedDataTrainsEveryStep) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_partial");
  struct Case {
    std::string name, loss, term;
    std::function<std::string(int)> extra;
  };
  const std::vector<Case> cases = {
      {"attrs_some", "bt,regression", "loss_regression",
       [](int i) { return i % 4 == 0 ? ",\"attributes\":[0.1,0.2,0.3]" : i % 4 == 1 ? ",\"attributes\":[0.5,0.6]" : ""; }},
      {"attrs_3_or_2", "bt,regression", "loss_regression",
       [](int i) { return i % 2 == 0 ? ",\"attributes\":[0.1,0.2,0.3]" : ",\"attributes\":[0.5,0.6]"; }},
      {"margin_or_scores", "bt-margin", "loss_bt-margin",
       [](int i) { return i % 2 == 0 ? ",\"margin\":0.5" : ",\"score_chosen\":2,\"score_rejected\":1"; }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string rows;
    for (int i = 0; i < 16; ++i)
      rows += "{\"prompt\":\"Tell a story " + std::to_string(i) +
              "\",\"chosen\":\"Once upon a time there was a cat.\",\"rejected\":\"cat a was there time\"" +
              c.extra(i) + "}\n";
    std::string path = join_path(dir, c.name + ".jsonl");
    rmkit::write_file_atomic(path, rows);
    auto o = small(path, join_path(dir, c.name));
    o.val_fraction = 0;
    o.batch_size = 2;
    o.max_steps = 20;
    o.loss = c.loss;
    Trainer t(o);
    t.set_logger(quiet);
    try {
      t.train();
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    auto recs = MetricsLog::read(join_path(o.output, "metrics.jsonl"));
    EXPECT_EQ(recs.size(), 20u);
    for (const auto& r : recs) {
      ASSERT_TRUE(r.contains(c.term)) << r.dump();
      EXPECT_TRUE(std::isfinite(r[c.term].get<double>())) << r.dump();
      EXPECT_GE(r[c.term].get<double>(), 0.0) << r.dump();
    }
  }
  std::filesystem::remove_all(dir);
}

// --loss-schedule alternate: on a DPO step (0-based odd) the reward head gets no gradient, so AdamW
// must leave it exactly as it was (no momentum, no weight decay); on the next bt step it moves again.
TEST(Trainer, AlternateScheduleLeavesParametersWithoutGradientUntouched) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_alternate");
  std::string path = join_path(dir, "pairs.jsonl");
  std::string rows;
  for (int i = 0; i < 8; ++i)
    rows += "{\"prompt\":\"Tell a story " + std::to_string(i) +
            "\",\"chosen\":\"Once upon a time there was a cat.\",\"rejected\":\"cat a was there time\"}\n";
  rmkit::write_file_atomic(path, rows);
  auto o = small(path, join_path(dir, "out"));
  o.val_fraction = 0;
  o.max_steps = 3;
  o.loss = "bt,dpo:0.5";
  o.loss_schedule = "alternate";
  o.weight_decay = 0.1;
  o.save_every = 1;
  o.keep_checkpoints = 0;
  Trainer t(o);
  t.set_logger(quiet);
  t.train();
  auto weights = [&](int step) {
    return model::read_safetensors(join_path(o.output, "checkpoints/step-" + std::to_string(step) + "/model.safetensors"));
  };
  auto s1 = weights(1), s2 = weights(2), s3 = weights(3);
  ASSERT_TRUE(s1.count("score.weight"));
  // step 2 is DPO: the head has no gradient and stays bit-identical while the backbone moves
  EXPECT_TRUE(torch::equal(s1.at("score.weight"), s2.at("score.weight")));
  EXPECT_FALSE(torch::equal(s1.at("model.norm.weight"), s2.at("model.norm.weight")));
  // step 3 is bt again: the head moves
  EXPECT_FALSE(torch::equal(s2.at("score.weight"), s3.at("score.weight")));
  std::filesystem::remove_all(dir);
}

TEST(Trainer, DpoAndSftTermsRun) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_dpo");
  std::string path = join_path(dir, "teacher.jsonl");
  std::string rows;
  for (int i = 0; i < 8; ++i)
    rows += "{\"prompt\":\"Tell a story " + std::to_string(i) +
            "\",\"chosen\":\"Once upon a time there was a cat.\",\"rejected\":\"cat a was there time\","
            "\"teacher_response\":\"Once upon a time, a little dog played.\"}\n";
  rmkit::write_file_atomic(path, rows);
  auto o = small(path, join_path(dir, "out"));
  o.val_fraction = 0;
  o.max_steps = 2;
  o.loss = "bt:1,dpo:0.2,sft:0.1";
  Trainer t(o);
  t.set_logger(quiet);
  t.train();
  auto recs = MetricsLog::read(join_path(o.output, "metrics.jsonl"));
  ASSERT_EQ(recs.size(), 2u);
  // at step 1 the policy equals the frozen reference: DPO loss = -log sigmoid(0) = log 2
  EXPECT_NEAR(recs[0]["loss_dpo"].get<double>(), std::log(2.0), 1e-5);
  EXPECT_GT(recs[0]["loss_sft"].get<double>(), 0.0);
  EXPECT_NEAR(recs[0]["loss"].get<double>(),
              recs[0]["loss_bt"].get<double>() + 0.2 * std::log(2.0) + 0.1 * recs[0]["loss_sft"].get<double>(), 1e-4);
  std::filesystem::remove_all(dir);
}

// The shared-prefix layout and activation checkpointing change how the forward runs, not what it
// computes: every step's loss components (reward, DPO against the reference, SFT, KL against a
// teacher) and so the updated weights must match the plain joint forward.
TEST(Trainer, SharedPrefixAndCheckpointingReproduceThePlainRun) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string dir = rmkit::testing::temp_dir("trainer_shared");
  std::string data = write_slice(dir, 24);
  std::string rows, line;
  {  // add teacher replies so the sft term has data
    auto text = read_file(data);
    size_t pos = 0, i = 0;
    while ((pos = text.find('\n')) != std::string::npos) {
      line = text.substr(0, pos);
      text.erase(0, pos + 1);
      auto j = nlohmann::json::parse(line);
      if (i++ % 2 == 0) j["teacher_response"] = "Once upon a time, a little dog played.";
      rows += j.dump() + "\n";
    }
    rmkit::write_file_atomic(data, rows);
  }
  auto run = [&](const std::string& tag, bool shared, bool ckpt) {
    auto o = small(data, join_path(dir, tag));
    o.val_fraction = 0;
    o.max_steps = 4;
    o.max_length = 64;
    o.loss = "bt:1,dpo:0.2,sft:0.1,kl:0.5";
    o.teacher_model = o.model;
    o.shared_prefix = shared;
    o.shared_prefix_always = shared;
    o.grad_checkpointing = ckpt;
    Trainer t(o);
    t.set_logger(quiet);
    t.train();
    return MetricsLog::read(join_path(o.output, "metrics.jsonl"));
  };
  auto plain = run("plain", false, false);
  auto shared = run("shared", true, false);
  auto both = run("shared_ckpt", true, true);
  ASSERT_EQ(plain.size(), 4u);
  ASSERT_EQ(shared.size(), 4u);
  ASSERT_EQ(both.size(), 4u);
  // Step 1 sees identical weights: float32 summation-order noise only. Later steps compare after
  // AdamW updates, which rescale that noise (grad / sqrt(v)), so they get a looser relative bound.
  for (size_t s = 0; s < plain.size(); ++s)
    for (const char* k : {"loss", "loss_bt", "loss_dpo", "loss_sft", "loss_kl", "margin", "grad_norm"}) {
      ASSERT_TRUE(plain[s].contains(k)) << k;
      const double want = plain[s][k].get<double>();
      const double tol = (s == 0 ? 1e-5 : 1e-4) * std::max(1.0, std::abs(want));
      EXPECT_NEAR(shared[s][k].get<double>(), want, tol) << "step " << s + 1 << " " << k;
      EXPECT_NEAR(both[s][k].get<double>(), want, tol) << "step " << s + 1 << " " << k;
    }
  std::filesystem::remove_all(dir);
}

TEST(Progress, RenderAndDurations) {
  EXPECT_EQ(Progress::format_duration(45), "45s");
  EXPECT_EQ(Progress::format_duration(187), "3m07s");
  EXPECT_EQ(Progress::format_duration(7500), "2h05m");
  std::FILE* f = std::tmpfile();
  {
    Progress p("train", 10, Progress::Mode::Lines, f, 1e9);
    p.update(3, "loss 0.5");
    p.update(4, "loss 0.4");  // within the interval: not printed
    p.finish();
  }
  std::rewind(f);
  char buf[4096];
  size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  std::string text(buf, n);
  // first update and the final line, each on its own line, no carriage returns
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("train 3/10"), std::string::npos) << text;
  EXPECT_NE(text.find("| loss 0.5"), std::string::npos) << text;
  EXPECT_NE(text.find("train 4/10"), std::string::npos) << text;
  Progress bar("x", 4, Progress::Mode::Bar, std::tmpfile());
  bar.update(2);
  EXPECT_NE(bar.render(8).find("[####....] 2/4"), std::string::npos) << bar.render(8);
}

TEST(MetricsLogTest, AppendsFlushesAndTruncates) {
  std::string dir = rmkit::testing::temp_dir("metrics");
  std::string p = join_path(dir, "m.jsonl");
  {
    MetricsLog m(p);
    for (int s = 1; s <= 5; ++s) m.write({{"step", s}, {"loss", 1.0 / s}});
    m.write({{"step", 6}, {"loss", std::nan("")}});
    // flushed: readable while the log is still open
    EXPECT_EQ(MetricsLog::read(p).size(), 6u);
  }
  auto recs = MetricsLog::read(p);
  EXPECT_TRUE(recs[5]["loss"].is_null());
  EXPECT_EQ(MetricsLog::truncate_after_step(p, 3), 3u);
  recs = MetricsLog::read(p);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[2]["step"], 3);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rmkit::train
