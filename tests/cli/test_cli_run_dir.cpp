// Run directories cannot be mixed up (issue 18): a new run into another run's directory is refused
// (--overwrite clears it), --resume refuses a changed option and names it, one process per
// directory (flock; the second names the holder's pid), a failed checkpoint write is one line and
// keeps the previous checkpoint, stale temps of the run are removed, a torn metrics line does not
// block --resume, and a checkpoint without rng.pt is refused unless --resume-inexact.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cli/cli_hardening_util.h"
#include "rmkit/core/error.h"

namespace rmkit::hardening {
namespace {

namespace fs = std::filesystem;
using testing::run_rmkit;
using testing::shell_quote;

std::vector<long long> metric_steps(const std::string& out) {
  std::vector<long long> steps;
  for (const auto& r : read_jsonl(join_path(out, "metrics.jsonl"))) steps.push_back(r.at("step").get<long long>());
  return steps;
}

std::vector<std::string> dir_names(const std::string& dir) {
  std::vector<std::string> v;
  if (!fs::is_directory(dir)) return v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

struct RunDirFixture : ::testing::Test {
  std::string dir, data, out;
  void SetUp() override {
    ASSERT_TRUE(path_exists(testing::asset(kModel))) << "missing asset (set RMKIT_ASSETS)";
    dir = testing::temp_dir("run_dir");
    data = slice(dir, "prefs/ultrafeedback_sample.jsonl.gz", 40, "train.jsonl");
    out = join_path(dir, "out");
  }
  void TearDown() override { fs::remove_all(dir); }
  // 4-step run interrupted after 2 steps: checkpoints step-1 and step-2.
  void interrupted_run() {
    auto r = run_rmkit(train_args(data, out) + " --stop-after-steps 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(dir_names(join_path(out, "checkpoints")), (std::vector<std::string>{"step-1", "step-2"}));
  }
};

TEST_F(RunDirFixture, NewRunIntoAnotherRunsDirectoryIsRefused) {
  auto a = run_rmkit(train_args(data, out));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const std::string weights = fnv1a_hex(read_file(join_path(out, "model.safetensors")));

  // a different run into the same directory: refused, nothing of run A touched
  auto b = run_rmkit(train_args(data, out) + " --lr 5e-3 --max-steps 2");
  EXPECT_EQ(b.exit_code, 1) << b.err;
  EXPECT_NE(last_line(b.err).find("--overwrite"), std::string::npos) << b.err;
  EXPECT_NE(last_line(b.err).find("--resume"), std::string::npos) << b.err;
  EXPECT_EQ(fnv1a_hex(read_file(join_path(out, "model.safetensors"))), weights);
  EXPECT_EQ(metric_steps(out), (std::vector<long long>{1, 2, 3, 4}));

  // --overwrite clears the directory first: only run B's checkpoints and metrics remain
  auto c = run_rmkit(train_args(data, out) + " --lr 5e-3 --max-steps 2 --overwrite");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(metric_steps(out), (std::vector<long long>{1, 2}));
  EXPECT_EQ(dir_names(join_path(out, "checkpoints")), (std::vector<std::string>{"step-1", "step-2"}));
  EXPECT_NE(fnv1a_hex(read_file(join_path(out, "model.safetensors"))), weights);
}

TEST_F(RunDirFixture, ResumeRefusesAChangedOptionAndNamesIt) {
  interrupted_run();
  auto r = run_rmkit(train_args(data, out) + " --resume latest --lr 5e-3");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const std::string err = last_line(r.err);
  EXPECT_NE(err.find("lr"), std::string::npos) << err;
  EXPECT_NE(err.find("differs"), std::string::npos) << err;
  // options that may change on resume (listed in --help): progress, threads, log-every
  auto ok = run_rmkit(train_args(data, out) + " --resume latest --progress lines --threads 1 --log-every 1");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(metric_steps(out), (std::vector<long long>{1, 2, 3, 4}));
  auto help = run_rmkit("train --help");
  EXPECT_NE(help.out.find("may change on resume"), std::string::npos) << help.out;
}

TEST_F(RunDirFixture, SecondProcessOnTheDirectoryIsRefusedNamingTheHolder) {
  std::string logs = join_path(dir, "logs");
  make_dirs(logs);
  // a long run holds the directory
  int holder = spawn_rmkit(train_args(data, out) + " --max-steps 1000000 --save-every 0", logs);
  ASSERT_GT(holder, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline &&
         !(path_exists(join_path(out, "metrics.jsonl")) && fs::file_size(join_path(out, "metrics.jsonl")) > 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const bool started = path_exists(join_path(out, "metrics.jsonl"));
  auto second = started ? run_rmkit(train_args(data, out) + " --max-steps 2") : testing::CmdResult{-1, "", ""};
  stop_child(holder);
  ASSERT_TRUE(started) << "the first run did not start within 90 s: " << read_file(join_path(logs, "err"));
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_NE(last_line(second.err).find("pid " + std::to_string(holder)), std::string::npos) << second.err;
}

TEST_F(RunDirFixture, FailedCheckpointWriteIsOneLineAndKeepsThePreviousCheckpoint) {
  interrupted_run();
  const std::string step2 = join_path(out, "checkpoints/step-2");
  const std::string opt_digest = fnv1a_hex(read_file(join_path(step2, "optimizer.pt")));
  // optimizer.pt (~2 MB) cannot be written under a 1.5 MB file size limit: the step-3 checkpoint fails
  auto r = run_rmkit_limited(train_args(data, out) + " --resume latest", 1536 * 1024);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const std::string err = last_line(r.err);
  EXPECT_EQ(err.rfind("rmkit train: error: ", 0), 0u) << r.err;
  EXPECT_NE(err.find("step-3"), std::string::npos) << err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("frame #"), std::string::npos) << r.err;
  // no partial temp, the previous checkpoint intact and resumable
  EXPECT_EQ(dir_names(join_path(out, "checkpoints")), (std::vector<std::string>{"step-1", "step-2"}));
  EXPECT_EQ(fnv1a_hex(read_file(join_path(step2, "optimizer.pt"))), opt_digest);
  for (const auto& n : dir_names(out)) EXPECT_EQ(n.find(".tmp"), std::string::npos) << n;
  auto ok = run_rmkit(train_args(data, out) + " --resume latest");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(metric_steps(out), (std::vector<long long>{1, 2, 3, 4}));
}

TEST_F(RunDirFixture, StaleTempsOfTheRunAreRemovedAtStart) {
  interrupted_run();
  // litter of an interrupted process (pid 999999): checkpoint temp dir, model temp dir, 0-byte temp file
  make_dirs(join_path(out, "checkpoints/.step-3.tmp-999999"));
  write_file_atomic(join_path(out, "checkpoints/.step-3.tmp-999999/model.safetensors"), "partial");
  make_dirs(join_path(out, ".best.tmp-999999"));
  write_file_atomic(join_path(out, "model.safetensors.tmp.999999"), "");
  write_file_atomic(join_path(out, "notes.txt"), "the user's file");  // not rmkit's: kept
  auto r = run_rmkit(train_args(data, out) + " --resume latest");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(path_exists(join_path(out, "checkpoints/.step-3.tmp-999999")));
  EXPECT_FALSE(path_exists(join_path(out, ".best.tmp-999999")));
  EXPECT_FALSE(path_exists(join_path(out, "model.safetensors.tmp.999999")));
  EXPECT_EQ(read_file(join_path(out, "notes.txt")), "the user's file");
}

TEST_F(RunDirFixture, TornMetricsLineDoesNotBlockResume) {
  interrupted_run();
  {
    std::string m = read_file(join_path(out, "metrics.jsonl")) + "{\"step\": 3, \"loss\": 0.6";
    std::FILE* f = std::fopen(join_path(out, "metrics.jsonl").c_str(), "w");
    std::fwrite(m.data(), 1, m.size(), f);
    std::fclose(f);
  }
  auto r = run_rmkit(train_args(data, out) + " --resume latest");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("incomplete"), std::string::npos) << r.err;
  EXPECT_EQ(metric_steps(out), (std::vector<long long>{1, 2, 3, 4}));
}

TEST_F(RunDirFixture, CheckpointWithoutRngStateIsRefusedUnlessInexact) {
  interrupted_run();
  fs::remove(join_path(out, "checkpoints/step-2/rng.pt"));
  auto r = run_rmkit(train_args(data, out) + " --resume latest");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(last_line(r.err).find("rng.pt"), std::string::npos) << r.err;
  EXPECT_NE(last_line(r.err).find("--resume-inexact"), std::string::npos) << r.err;
  auto ok = run_rmkit(train_args(data, out) + " --resume latest --resume-inexact");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("warning"), std::string::npos) << ok.err;
  EXPECT_EQ(metric_steps(out), (std::vector<long long>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace rmkit::hardening
