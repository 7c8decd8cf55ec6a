// Multi-process data-parallel training on loopback with the real stories260K model:
//   * 2 ranks x per-rank batch B == 1 process x batch 2B (loss sequence, validation accuracy and
//     final weights to 1e-5, fp32, no dropout) for bt, margin-mse:1,sft:0.1 and bt:1,dpo:0.2, with
//     gradient accumulation too;
//   * the same run through torchrun (python3 -m torch.distributed.run) and through `rmkit launch`;
//   * kill one rank mid-run: the survivor stops with a one-line error naming itself and the
//     operation, the last checkpoint stays intact, and resuming it (here with ONE process and the
//     same global batch) reproduces the uninterrupted loss sequence.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "dist/dist_test_util.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/config.h"
#include "rmkit/model/registry.h"
#include "rmkit/model/safetensors.h"
#include "rmkit/text/tokenizer.h"
#include "test_util.h"

namespace rmkit::testing::dist {
namespace {

std::string bin() { return shell_quote(rmkit_bin()); }

std::string launch(int nproc, const std::string& args) {
  return bin() + " launch --nproc-per-node " + std::to_string(nproc) + " -- " + bin() + " " + args;
}

void expect_same_run(const std::string& one, const std::string& dp, size_t steps) {
  auto l1 = metric_series(one, "loss"), l2 = metric_series(dp, "loss");
  ASSERT_EQ(l1.size(), steps);
  ASSERT_EQ(l2.size(), steps);
  // fp32: 1e-5 relative to the loss (margin-mse losses reach ~20; summation order differs)
  for (size_t i = 0; i < steps; ++i) EXPECT_NEAR(l1[i], l2[i], 1e-5 * std::max(1.0, std::abs(l1[i]))) << "step " << i + 1;
  // continuous metrics (accuracies can flip on a pair whose margin is ~0 in fp32)
  for (const char* key : {"margin", "reward_mean", "val_loss", "val_margin"}) {
    auto a1 = metric_series(one, key), a2 = metric_series(dp, key);
    ASSERT_EQ(a1.size(), a2.size()) << key;
    if (std::string(key).rfind("val_", 0) == 0) ASSERT_FALSE(a1.empty()) << key;  // sharded evaluation ran
    for (size_t i = 0; i < a1.size(); ++i) EXPECT_NEAR(a1[i], a2[i], 1e-5 * std::max(1.0, std::abs(a1[i]))) << key << " " << i;
  }
  auto g1 = metric_series(one, "grad_norm"), g2 = metric_series(dp, "grad_norm");
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_NEAR(g1[i], g2[i], 1e-4 * std::max(1.0, g1[i])) << i;
  EXPECT_LT(max_weight_diff(one, dp), 1e-5);
  // only rank 0 wrote: one metrics line per step, no second writer
  EXPECT_FALSE(metric_series(dp, "allreduce_wait_s").empty());
}

// One process with batch 2B vs `rmkit launch` 2 ranks x B.
void check_equivalence(const std::string& tag, const std::string& loss, int B, int accum, int steps,
                       size_t rows = 120, const std::string& extra = "") {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  const std::string dir = temp_dir("dist_eq_" + tag);
  const std::string data = write_train_slice(dir, rows);
  const std::string one = join_path(dir, "one"), dp = join_path(dir, "dp");
  std::string out;
  ASSERT_EQ(run_bounded(bin() + " " + train_args(data, one, loss, 2 * B, accum, steps) + extra, {}, 100, &out), 0) << out;
  ASSERT_EQ(run_bounded(launch(2, train_args(data, dp, loss, B, accum, steps) + extra), {}, 100, &out), 0) << out;
  expect_same_run(one, dp, static_cast<size_t>(steps));
}

TEST(E2EDistTrain, TwoRanksEqualOneProcessWithTheGlobalBatchBt) { check_equivalence("bt", "bt", 4, 1, 8); }

TEST(E2EDistTrain, TwoRanksEqualOneProcessMarginMseSft) {
  // sft normalises by the teacher tokens of the whole global batch, not per rank
  check_equivalence("mmse", "margin-mse:1,sft:0.1", 4, 1, 6);
}

TEST(E2EDistTrain, TwoRanksEqualOneProcessBtDpo) { check_equivalence("dpo", "bt:1,dpo:0.2", 4, 1, 6); }

TEST(E2EDistTrain, TwoRanksEqualOneProcessWithGradientAccumulation) {
  // 3 micro-batches per step, across an epoch end. All 97 rows train (validation comes from another
  // file), so with a global batch of 6 the epoch's last batch holds ONE pair: rank 1 gets none and
  // runs a zero-weight stand-in (step 6 = batches 16, 17 and the next epoch's first).
  RMKIT_REQUIRE_ASSET(asset("prefs/llmbar.jsonl.gz"));
  check_equivalence("accum", "margin-mse:1,sft:0.1", 3, 3, 7, 97,
                    " --val-data " + shell_quote(asset("prefs/llmbar.jsonl.gz")) + " --max-val-pairs 30");
}

// An untied LM head (a randomly initialised stories-sized Llama with tie_word_embeddings false):
// under a reward-only loss it gets no gradient on any rank and is left out of the all-reduce; with
// dpo it is trained and reduced. Both runs equal one process, and the unused head stays unchanged.
TEST(E2EDistTrain, UntiedLmHeadUnusedOrTrainedEqualsOneProcess) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/tok512.bin"));
  const std::string dir = temp_dir("dist_untied");
  const std::string data = write_train_slice(dir, 120);
  const std::string base = join_path(dir, "base");
  {
    nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 512},
                        {"hidden_size", 64}, {"intermediate_size", 128}, {"num_hidden_layers", 2},
                        {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"max_position_embeddings", 128},
                        {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", false}};
    auto cfg = model::ModelConfig::from_json(j, "untied");
    torch::manual_seed(11);
    auto m = model::create_model(cfg);
    auto tok = text::load_tokenizer(asset("models/stories260K/tok512.bin"));
    model::save_pretrained(base, cfg, *m, tok.get());
  }
  auto with_model = [&](std::string args) {
    const std::string from = "--model " + shell_quote(asset("models/stories260K/stories260K.bin")) + " --tokenizer " +
                             shell_quote(asset("models/stories260K/tok512.bin"));
    args.replace(args.find(from), from.size(), "--model " + shell_quote(base));
    return args;
  };
  std::string out;
  for (const std::string loss : {"bt", "bt:1,dpo:0.2"}) {
    const std::string tag = loss == "bt" ? "bt" : "dpo";
    const std::string one = join_path(dir, "one_" + tag), dp = join_path(dir, "dp_" + tag);
    ASSERT_EQ(run_bounded(bin() + " " + with_model(train_args(data, one, loss, 8, 1, 5)), {}, 100, &out), 0) << out;
    ASSERT_EQ(run_bounded(launch(2, with_model(train_args(data, dp, loss, 4, 1, 5))), {}, 100, &out), 0) << out;
    expect_same_run(one, dp, 5);
    auto before = model::read_safetensors(join_path(base, "model.safetensors")).at("lm_head.weight");
    auto after = saved_weights(dp);
    ASSERT_TRUE(after.count("lm_head.weight")) << "the saved reward model has no lm_head";
    const double moved = (after.at("lm_head.weight") - before).abs().max().item<double>();
    if (loss == "bt") EXPECT_EQ(moved, 0.0);
    else EXPECT_GT(moved, 0.0);
  }
}

TEST(E2EDistTrain, Zero1EqualsPlainDataParallel) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  const std::string dir = temp_dir("dist_zero1");
  const std::string data = write_train_slice(dir, 120);
  const std::string plain = join_path(dir, "plain"), z = join_path(dir, "zero1");
  std::string out;
  ASSERT_EQ(run_bounded(launch(2, train_args(data, plain, "bt:1,dpo:0.2", 4, 2, 5)), {}, 100, &out), 0) << out;
  ASSERT_EQ(run_bounded(launch(2, train_args(data, z, "bt:1,dpo:0.2", 4, 2, 5) + " --zero1"), {}, 100, &out), 0) << out;
  expect_same_run(plain, z, 5);
  // no optimizer checkpoints with sharded moments (yet): refused up front
  EXPECT_EQ(run_bounded(bin() + " " + train_args(data, join_path(dir, "x"), "bt", 4, 1, 5) + " --zero1 --save-every 2",
                        {}, 30, &out), 2) << out;
}

// A python3 that can run torchrun (Debian's python3-torch lives in /usr/bin/python3's dist-packages;
// a pyenv python3 on PATH lacks it), or "" with the last attempt's output in *out.
std::string torchrun_python(std::string* out) {
  for (const char* py : {"/usr/bin/python3", "python3"})
    if (run_bounded(std::string(py) + " -c 'import torch.distributed.run'", {}, 60, out) == 0) return py;
  return "";
}

// torchrun keeps its logs in a tempfile.mkdtemp() folder: TMPDIR puts it under the test's own dir
std::map<std::string, std::string> torchrun_env(const std::string& dir) { return {{"TMPDIR", dir}}; }

TEST(E2EDistTrain, TorchrunAndRmkitLaunchGiveTheSameRun) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  std::string out;
  const std::string python = torchrun_python(&out);
  if (python.empty()) GTEST_SKIP() << "python3-torch (torchrun) is not installed: " << out;
  const std::string dir = temp_dir("dist_torchrun");
  const std::string data = write_train_slice(dir, 120);
  const std::string a = join_path(dir, "launch"), b = join_path(dir, "torchrun");
  ASSERT_EQ(run_bounded(launch(2, train_args(data, a, "bt", 4, 1, 5)), {}, 100, &out), 0) << out;
  // (1.13's torchrun spells its options with underscores, 2.x accepts both; with Python 3.11 its
  // --redirects/--tee value 0 fails to parse (an IntFlag change), so stderr is redirected + tee'd)
  const std::string torchrun = python + " -m torch.distributed.run --nnodes 1 --nproc_per_node 2 --redirects 2 --tee 2 ";
  // static rendezvous: torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True) and
  // the ranks connect under its /worker/attempt_0 prefix
  ASSERT_EQ(run_bounded(torchrun + "--master_addr 127.0.0.1 --master_port " + std::to_string(free_port()) +
                            " --no_python " + bin() + " " + train_args(data, b, "bt", 4, 1, 5),
                        torchrun_env(dir), 110, &out), 0) << out;
  expect_same_run(a, b, 5);
  // c10d rendezvous: rank 0 hosts the store at the MASTER_ADDR/MASTER_PORT the agents agreed on
  const std::string c = join_path(dir, "torchrun_c10d");
  ASSERT_EQ(run_bounded(torchrun + "--rdzv_backend c10d --rdzv_endpoint 127.0.0.1:" + std::to_string(free_port()) +
                            " --no_python " + bin() + " " + train_args(data, c, "bt", 4, 1, 5),
                        torchrun_env(dir), 110, &out), 0) << out;
  expect_same_run(a, c, 5);
}

TEST(E2EDistTrain, KilledRankStopsTheSurvivorAndResumeContinuesExactly) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  const std::string dir = temp_dir("dist_kill");
  const std::string data = write_train_slice(dir, 400);
  const int steps = 40;
  // the uninterrupted reference: one process with the global batch
  const std::string ref = join_path(dir, "ref"), run = join_path(dir, "run");
  std::string out;
  ASSERT_EQ(run_bounded(bin() + " " + train_args(data, ref, "bt", 8, 1, steps), {}, 100, &out), 0) << out;

  const std::string args = train_args(data, run, "bt", 4, 1, steps) + " --save-every 2 --dist-timeout 30";
  const std::map<std::string, std::string> base = {{"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "2"},
                                                   {"MASTER_ADDR", "127.0.0.1"},
                                                   {"MASTER_PORT", std::to_string(free_port())}};
  auto env0 = base, env1 = base;
  env0["RANK"] = env0["LOCAL_RANK"] = "0";
  env1["RANK"] = env1["LOCAL_RANK"] = "1";
  Child r0 = spawn(bin() + " " + args, env0, join_path(dir, "rank0.log"));
  Child r1 = spawn(bin() + " " + args, env1, join_path(dir, "rank1.log"));
  // kill rank 1 once rank 0 has logged step 4 (a checkpoint exists at step 2 or 4)
  const auto t0 = std::chrono::steady_clock::now();
  bool killed = false;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    if (path_exists(join_path(run, "metrics.jsonl")) && metric_series(run, "loss").size() >= 4) {
      ::kill(-r1.pid, SIGKILL);
      killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(killed) << "rank 0 never reached step 4: " << (path_exists(r0.log) ? read_file(r0.log) : "");
  const auto t_kill = std::chrono::steady_clock::now();
  EXPECT_EQ(wait_child(r1, 10), 128 + SIGKILL);
  const int code0 = wait_child(r0, 40);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_kill).count();
  const std::string log0 = read_file(r0.log);
  ASSERT_NE(code0, -1) << "survivor did not stop within 40 s (timeout 30 s): " << log0;
  EXPECT_NE(code0, 0) << log0;
  EXPECT_LT(secs, 35.0);
  const size_t steps_done = metric_series(run, "loss").size();
  ASSERT_LT(steps_done, static_cast<size_t>(steps)) << "the run finished before the kill took effect";
  // the error is the last line: one line naming rank 0 and the failed collective
  std::string last = log0.substr(0, log0.find_last_not_of('\n') + 1);
  last = last.substr(last.rfind('\n') + 1);
  EXPECT_NE(last.find("rmkit train: error: rank 0/2: "), std::string::npos) << log0;
  EXPECT_NE(last.find("failed"), std::string::npos) << last;
  EXPECT_NE(last.find("rank 1 stopped responding"), std::string::npos) << last;

  // resume with ONE process and the same global batch (8): continues the same sequence
  ASSERT_EQ(run_bounded(bin() + " " + train_args(data, run, "bt", 8, 1, steps) + " --save-every 2 --resume latest",
                        {}, 100, &out), 0) << out;
  auto a = metric_series(ref, "loss"), b = metric_series(run, "loss");
  ASSERT_EQ(a.size(), static_cast<size_t>(steps));
  ASSERT_EQ(b.size(), static_cast<size_t>(steps));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * std::max(1.0, std::abs(a[i]))) << "step " << i + 1;
  EXPECT_LT(max_weight_diff(ref, run), 1e-4);  // 40 AdamW steps of fp32 summation-order noise
}

// A hung rank (SIGSTOP: its connections stay open, its heartbeat stops): the survivor gives up after
// --dist-timeout with the one-line error naming the silent rank, never hangs.
TEST(E2EDistTrain, HungRankTimesOutWithTheErrorLine) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  const std::string dir = temp_dir("dist_hang");
  const std::string data = write_train_slice(dir, 400);
  const std::string run = join_path(dir, "run");
  const std::string args = train_args(data, run, "bt", 4, 1, 40) + " --dist-timeout 5";
  const std::map<std::string, std::string> base = {{"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "2"},
                                                   {"MASTER_ADDR", "127.0.0.1"},
                                                   {"MASTER_PORT", std::to_string(free_port())}};
  auto env0 = base, env1 = base;
  env0["RANK"] = env0["LOCAL_RANK"] = "0";
  env1["RANK"] = env1["LOCAL_RANK"] = "1";
  Child r0 = spawn(bin() + " " + args, env0, join_path(dir, "rank0.log"));
  Child r1 = spawn(bin() + " " + args, env1, join_path(dir, "rank1.log"));
  const auto t0 = std::chrono::steady_clock::now();
  bool stopped = false;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    if (path_exists(join_path(run, "metrics.jsonl")) && metric_series(run, "loss").size() >= 2) {
      ::kill(-r1.pid, SIGSTOP);
      stopped = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto t_stop = std::chrono::steady_clock::now();
  const int code0 = wait_child(r0, 40);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_stop).count();
  ::kill(-r1.pid, SIGKILL);
  wait_child(r1, 10);
  ASSERT_TRUE(stopped) << read_file(r0.log);
  const std::string log0 = read_file(r0.log);
  ASSERT_NE(code0, -1) << "survivor still running 40 s after rank 1 hung (timeout 5 s): " << log0;
  EXPECT_EQ(code0, 1) << log0;
  EXPECT_LT(secs, 30.0);
  if (metric_series(run, "loss").size() < 40u) {  // (the hang landed inside the run, as intended)
    std::string last = log0.substr(0, log0.find_last_not_of('\n') + 1);
    last = last.substr(last.rfind('\n') + 1);
    EXPECT_NE(last.find("rmkit train: error: rank 0/2: "), std::string::npos) << log0;
    EXPECT_NE(last.find("rank 1 stopped responding"), std::string::npos) << last;
  }
}

// torchrun --max_restarts 1: rank 1 of the first attempt is killed mid-run; torchrun stops rank 0,
// restarts the group, the restarted attempt resumes from the last checkpoint (rmkit sees
// TORCHELASTIC_RESTART_COUNT=1) and the finished run has the uninterrupted loss sequence.
TEST(E2EDistTrain, TorchrunMaxRestartsResumesAfterAKilledRank) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  std::string out;
  const std::string python = torchrun_python(&out);
  if (python.empty()) GTEST_SKIP() << "python3-torch (torchrun) is not installed: " << out;
  const std::string dir = temp_dir("dist_restart");
  const std::string data = write_train_slice(dir, 400);
  const int steps = 30;
  const std::string ref = join_path(dir, "ref"), run = join_path(dir, "run");
  ASSERT_EQ(run_bounded(bin() + " " + train_args(data, ref, "bt", 8, 1, steps), {}, 100, &out), 0) << out;
  const std::string train = bin() + " " + train_args(data, run, "bt", 4, 1, steps) + " --save-every 2 --dist-timeout 30";
  const std::string metrics = shell_quote(join_path(run, "metrics.jsonl"));
  // attempt 0, rank 1: train in the background, SIGKILL it once rank 0 logged 4 steps (bounded wait)
  const std::string script =
      "if [ \"$TORCHELASTIC_RESTART_COUNT\" = 0 ] && [ \"$RANK\" = 1 ]; then " + train + " & P=$!; i=0; "
      "while [ \"$(cat " + metrics + " 2>/dev/null | wc -l)\" -lt 4 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; "
      "kill -9 $P; exit 1; else exec " + train + "; fi";
  const std::string cmd = python + " -m torch.distributed.run --nnodes 1 --nproc_per_node 2 --redirects 2 --tee 2 "
                          "--max_restarts 1 --master_addr 127.0.0.1 --master_port " + std::to_string(free_port()) +
                          " --no_python sh -c " + shell_quote(script);
  ASSERT_EQ(run_bounded(cmd, torchrun_env(dir), 110, &out), 0) << out;
  EXPECT_NE(out.find("torchrun restart 1: resuming from the latest checkpoint"), std::string::npos) << out;
  auto a = metric_series(ref, "loss"), b = metric_series(run, "loss");
  ASSERT_EQ(a.size(), static_cast<size_t>(steps));
  ASSERT_EQ(b.size(), static_cast<size_t>(steps));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * std::max(1.0, std::abs(a[i]))) << "step " << i + 1;
}

TEST(DistTrain, LaunchExitsWithTheFirstFailuresCode) {
  std::string out;
  // rank 1 fails with 3, rank 0 would run for a minute: launch stops it and exits 3 quickly
  const auto t0 = std::chrono::steady_clock::now();
  int code = run_bounded(bin() + " launch --nproc-per-node 2 --grace 2 -- sh -c 'if [ \"$RANK\" = 1 ]; then exit 3; "
                                 "fi; exec sleep 60'", {}, 30, &out);
  EXPECT_EQ(code, 3) << out;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
  EXPECT_NE(out.find("rank 1 failed with exit code 3"), std::string::npos) << out;
  // every rank sees the torchrun variables
  code = run_bounded(bin() + " launch --nproc-per-node 3 -- sh -c 'echo \"R=$RANK W=$WORLD_SIZE L=$LOCAL_RANK "
                             "LW=$LOCAL_WORLD_SIZE A=$MASTER_ADDR\"'", {}, 30, &out);
  EXPECT_EQ(code, 0) << out;
  for (int r = 0; r < 3; ++r)
    EXPECT_NE(out.find("R=" + std::to_string(r) + " W=3 L=" + std::to_string(r) + " LW=3 A=127.0.0.1"),
              std::string::npos) << out;
  EXPECT_EQ(run_bounded(bin() + " launch --nproc-per-node 2", {}, 30, &out), 2) << out;  // no command
}

TEST(DistTrain, MalformedEnvironmentIsAOneLineConfigError) {
  std::string out;
  int code = run_bounded(bin() + " train --model x --data y --output z", {{"WORLD_SIZE", "2"}, {"RANK", "0"}}, 30, &out);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("MASTER_PORT is not set"), std::string::npos) << out;
}

}  // namespace
}  // namespace rmkit::testing::dist
