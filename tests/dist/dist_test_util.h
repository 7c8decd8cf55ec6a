// Helpers for the multi-process data-parallel tests: a training data slice, the common `rmkit
// train` arguments, child processes with their own environment (bounded waits, always reaped),
// and readers for metrics.jsonl and the saved weights.
#pragma once
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace rmkit::testing::dist {

// First `n` UltraFeedback rows (they carry scores for margin-mse); every other row gets a teacher
// reply for the sft term. Written once per directory.
std::string write_train_slice(const std::string& dir, size_t n);
// `rmkit train` arguments (shell-quoted) for stories260K on `data` with a linear head (no dropout),
// fp32, one thread.
std::string train_args(const std::string& data, const std::string& out, const std::string& loss, int batch,
                       int grad_accum, int steps);
// A port that is free on 127.0.0.1 right now.
int free_port();

struct Child {
  pid_t pid = -1;
  std::string log;  // stdout+stderr file
};
// Runs `sh -c cmd` with extra environment variables; output goes to `log`.
Child spawn(const std::string& cmd, const std::map<std::string, std::string>& env, const std::string& log);
// Waits up to `seconds`; returns the exit code (128+signal when killed), or -1 after killing it
// on timeout.
int wait_child(Child& c, double seconds);
// Runs `sh -c cmd` to completion (bounded); returns the exit code and fills *out with its output.
int run_bounded(const std::string& cmd, const std::map<std::string, std::string>& env, double seconds,
                std::string* out);

std::vector<double> metric_series(const std::string& out_dir, const std::string& key);
std::map<std::string, torch::Tensor> saved_weights(const std::string& model_dir);
// Largest |a - b| over tensors present in both (fails the test when the names differ).
double max_weight_diff(const std::string& dir_a, const std::string& dir_b);

}  // namespace rmkit::testing::dist
