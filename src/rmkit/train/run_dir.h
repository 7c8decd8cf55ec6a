// Run directories that cannot be mixed up: one process per directory (an flock on DIR/.rmkit.lock
// holding the pid), a run identity (DIR/run.json: run id, effective config, data hash) written at
// start, refusal to start a new run into another run's directory (unless --overwrite clears it),
// the config check of --resume, and removal of the temps an interrupted run left behind.
// Torch-free.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rmkit::train {

// Exclusive lock on DIR/.rmkit.lock for the object's lifetime (creates DIR). A second holder gets
// IoError "DIR: in use by another rmkit process (pid N) ...".
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

inline constexpr const char* kRunLockFile = ".rmkit.lock";
inline constexpr const char* kRunFile = "run.json";

// Temps of interrupted writes in a run directory, of any process but this one (call with the
// RunLock held): ".NAME.tmp-<pid>" directories and "NAME.tmp.<pid>" files in DIR, DIR/best and
// DIR/checkpoints, and ".<DIR's name>.tmp-<pid>" beside DIR. Returns the removed paths.
// They never include a complete copy: a finished save waits as ".NAME.new-<pid>" (the previous copy
// as ".NAME.old-<pid>") until installed, and recover_run_saves() must run first.
std::vector<std::string> remove_run_temps(const std::string& dir);

// Finishes the model saves an interrupted run left half-installed (core/dir_install.h), call with the
// RunLock held and before remove_run_temps: DIR/best, DIR/checkpoints/step-N and DIR's own model
// files (".<DIR's name>.new-<pid>" beside DIR). Returns one line per action, for the log.
std::vector<std::string> recover_run_saves(const std::string& dir);

// What makes DIR another run's directory ("run.json", "checkpoints/", "metrics.jsonl",
// "model.safetensors" or "best/", the first found), or "" when it holds none of them.
std::string run_marker(const std::string& dir);
// --overwrite: removes every entry of DIR except the lock file.
void clear_run_dir(const std::string& dir);

struct RunIdentity {
  std::string run_id;       // random hex, the same for every checkpoint of the run
  nlohmann::json config;    // TrainerOptions::to_json() of the run's start
  std::string data_hash;
  std::string started;      // UTC time, ISO 8601

  nlohmann::json to_json() const;
  static std::optional<RunIdentity> read(const std::string& dir);  // nullopt: no run.json
  void write(const std::string& dir) const;
  static std::string new_id();
};

// Config keys (TrainerOptions::to_json) that may change when resuming: they affect neither the
// weights nor the data order. data/val_data paths are not compared (the data hash is).
const std::vector<std::string>& resumable_config_keys();
// The option name of a config key, e.g. "beta1" -> "--adam-beta1", "max_length" -> "--max-length".
std::string config_key_option(const std::string& key);
// First compared key whose value differs between a checkpoint's config and the current one ("" when
// they agree); its two values (JSON) go to *saved_value / *now_value.
std::string first_config_difference(const nlohmann::json& saved, const nlohmann::json& now,
                                    std::string* saved_value, std::string* now_value);

}  // namespace rmkit::train
