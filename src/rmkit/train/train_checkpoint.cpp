#include "rmkit/train/train_checkpoint.h"

#include <unistd.h>

#include <ATen/CPUGeneratorImpl.h>
#include <algorithm>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "rmkit/core/dir_install.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/safetensors.h"

namespace rmkit::train {
namespace fs = std::filesystem;

nlohmann::json TrainerState::to_json() const {
  return {{"step", step},
          {"micro_batches", micro_batches},
          {"best_val_accuracy", best_val_accuracy},
          {"best_step", best_step},
          {"data_hash", data_hash},
          {"annotation_hash", annotation_hash},
          {"seed", seed},
          {"batch_size", batch_size},
          {"grad_accum", grad_accum},
          {"total_steps", total_steps},
          {"loss", loss},
          {"run_id", run_id},
          {"config", config}};
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& where) {
  TrainerState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.micro_batches = j.at("micro_batches").get<int64_t>();
    s.best_val_accuracy = j.value("best_val_accuracy", -1.0);
    s.best_step = j.value("best_step", int64_t{0});
    s.data_hash = j.value("data_hash", "");
    s.annotation_hash = j.value("annotation_hash", "");
    s.seed = j.value("seed", uint64_t{0});
    s.batch_size = j.value("batch_size", int64_t{0});
    s.grad_accum = j.value("grad_accum", int64_t{0});
    s.total_steps = j.value("total_steps", int64_t{0});
    s.loss = j.value("loss", "");
    s.run_id = j.value("run_id", "");
    s.config = j.value("config", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(where + ": " + e.what());
  }
  return s;
}

namespace {

std::string checkpoint_run_id(const std::string& ckpt) {
  try {
    return nlohmann::json::parse(read_file(join_path(ckpt, "trainer_state.json"))).value("run_id", "");
  } catch (const std::exception&) {
    return "";  // unreadable: not this run's
  }
}

// torch::save into memory, then one checked atomic write: libtorch's own file writer aborts the
// process when a write fails inside its destructor (full disk).
template <typename T>
void save_torch(const T& value, const std::string& path) {
  std::ostringstream os;
  try {
    torch::save(value, os);
  } catch (const c10::Error& e) {
    throw IoError(path + ": cannot serialise: " + e.what_without_backtrace());
  }
  const std::string bytes = os.str();
  AtomicFileWriter w(path);
  w.write(bytes);
  w.commit();
}

}  // namespace

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& dir, const std::string& run_id) {
  std::vector<std::pair<int64_t, std::string>> out;
  if (!is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (!e.is_directory() || n.rfind("step-", 0) != 0) continue;
    std::string num = n.substr(5);
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) continue;
    if (num.size() > 18) continue;
    if (!run_id.empty() && checkpoint_run_id(e.path().string()) != run_id) continue;
    out.emplace_back(std::stoll(num), e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string latest_checkpoint(const std::string& dir, const std::string& run_id) {
  auto l = list_checkpoints(dir, run_id);
  return l.empty() ? "" : l.back().second;
}

torch::Tensor get_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

std::string save_train_checkpoint(const std::string& checkpoints_dir, RewardModelImpl& rm,
                                  const text::Tokenizer* tokenizer, const RewardModelMeta& meta,
                                  torch::optim::Optimizer& optimizer, const TrainerState& state,
                                  int64_t keep) {
  make_dirs(checkpoints_dir);
  const std::string name = "step-" + std::to_string(state.step);
  const std::string final_dir = join_path(checkpoints_dir, name);
  const std::string tmp = join_path(checkpoints_dir, "." + name + ".tmp-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    save_reward_model(tmp, rm, tokenizer, meta, "float32");  // fp32: resume must be exact
    save_torch(optimizer, join_path(tmp, "optimizer.pt"));
    save_torch(get_rng_state(), join_path(tmp, "rng.pt"));
    write_file_atomic(join_path(tmp, "trainer_state.json"), state.to_json().dump(2) + "\n");
    // complete: from here on the next start-up installs it (recover_run_saves) rather than removing
    // it, and a checkpoint of the same step saved before stays whole until it is replaced
    const std::string staged = install_temp_path(final_dir, "new", ::getpid());
    fs::rename(tmp, staged);
    install_staged_dir(staged, final_dir, kModelCommitFile);
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    std::string why = e.what();
    if (auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
    throw IoError("cannot write checkpoint " + final_dir + ": " + why);
  }
  if (keep > 0) {
    auto all = list_checkpoints(checkpoints_dir, state.run_id);
    for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i].second, ec);
  }
  return final_dir;
}

TrainerState load_train_checkpoint(const std::string& dir, RewardModelImpl& rm,
                                   torch::optim::Optimizer& optimizer, bool allow_missing_rng) {
  const std::string state_path = join_path(dir, "trainer_state.json");
  if (!path_exists(state_path)) throw IoError(dir + ": not a training checkpoint (no trainer_state.json)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(state_path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(state_path + ": invalid JSON: " + e.what());
  }
  TrainerState st = TrainerState::from_json(j, state_path);
  const std::string rng_path = join_path(dir, "rng.pt");
  if (!path_exists(rng_path) && !allow_missing_rng)
    throw IoError(dir + ": no rng.pt (the random state): resuming would not continue the run exactly "
                        "(dropout, data order of sampling); pass --resume-inexact to resume anyway");

  const std::string weights = join_path(dir, "model.safetensors");
  auto tensors = model::read_safetensors(weights);
  auto extra = model::load_state(rm.backbone(), tensors, {"score."});
  rm.load_head_state(extra, weights);

  const std::string opt_path = join_path(dir, "optimizer.pt");
  try {
    torch::load(optimizer, opt_path);
  } catch (const c10::Error& e) {
    throw FormatError(opt_path + ": cannot restore optimizer state: " + e.what_without_backtrace());
  }
  if (path_exists(rng_path)) {
    torch::Tensor s;
    try {
      torch::load(s, rng_path);
      set_rng_state(s);
    } catch (const c10::Error& e) {
      throw FormatError(rng_path + ": cannot restore the random state: " + e.what_without_backtrace());
    }
  }
  return st;
}

}  // namespace rmkit::train
