#include "rmkit/train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include "rmkit/core/dir_install.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::train {
namespace fs = std::filesystem;

RunLock::RunLock(const std::string& dir) {
  make_dirs(dir);
  const std::string path = join_path(dir, kRunLockFile);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path + ": cannot open the run lock: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {0};
    ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) throw IoError(path + ": cannot lock the run directory: " + std::strerror(err));
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    holder.erase(std::remove_if(holder.begin(), holder.end(), [](char c) { return c < '0' || c > '9'; }),
                 holder.end());
    throw IoError(dir + ": in use by another rmkit process (pid " + (holder.empty() ? "unknown" : holder) +
                  "); wait for it to finish or use another --output");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // the lock is held; only the pid note for a second process failed
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

namespace {

void remove_temps_in(const std::string& dir, std::vector<std::string>* removed) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    const long pid = rmkit_temp_pid(n);
    if (pid > 0 && pid != ::getpid()) stale.push_back(e.path());
  }
  for (const auto& p : stale)
    if (fs::remove_all(p, ec) > 0) removed->push_back(p.string());
}

}  // namespace

std::vector<std::string> remove_run_temps(const std::string& dir_in) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::vector<std::string> removed;
  remove_temps_in(dir, &removed);
  remove_temps_in(join_path(dir, "best"), &removed);
  remove_temps_in(join_path(dir, "checkpoints"), &removed);
  // the sibling temp directory of a final-model save: ".<name>.tmp-<pid>" beside DIR
  std::string parent = parent_dir(dir);
  if (parent.empty()) parent = ".";
  const std::string prefix = "." + file_name(dir) + ".tmp-";
  std::error_code ec;
  if (fs::is_directory(parent, ec)) {
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(parent, ec)) {
      const std::string n = e.path().filename().string();
      const long pid = rmkit_temp_pid(n);
      if (n.rfind(prefix, 0) == 0 && pid > 0 && pid != ::getpid()) stale.push_back(e.path());
    }
    for (const auto& p : stale)
      if (fs::remove_all(p, ec) > 0) removed.push_back(p.string());
  }
  return removed;
}

std::vector<std::string> recover_run_saves(const std::string& dir_in) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::vector<std::string> done;
  auto add = [&](std::vector<std::string> v) { done.insert(done.end(), v.begin(), v.end()); };
  std::string parent = parent_dir(dir);
  if (parent.empty()) parent = ".";
  add(recover_installs(parent, kModelCommitFile, file_name(dir)));  // DIR's own files (other runs' left alone)
  add(recover_installs(dir, kModelCommitFile));
  add(recover_installs(join_path(dir, "checkpoints"), kModelCommitFile));
  return done;
}

std::string run_marker(const std::string& dir) {
  for (const char* m : {kRunFile, "checkpoints", "metrics.jsonl", "model.safetensors", "best"})
    if (path_exists(join_path(dir, m))) return m;
  return "";
}

void clear_run_dir(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename() == kRunLockFile) continue;
    fs::remove_all(e.path(), ec);
    if (ec) throw IoError(e.path().string() + ": cannot remove (--overwrite): " + ec.message());
  }
}

nlohmann::json RunIdentity::to_json() const {
  return {{"run_id", run_id}, {"started", started}, {"data_hash", data_hash}, {"config", config}};
}

std::optional<RunIdentity> RunIdentity::read(const std::string& dir) {
  const std::string path = join_path(dir, kRunFile);
  if (!path_exists(path)) return std::nullopt;
  RunIdentity r;
  try {
    auto j = nlohmann::json::parse(read_file(path));
    r.run_id = j.at("run_id").get<std::string>();
    r.started = j.value("started", "");
    r.data_hash = j.value("data_hash", "");
    r.config = j.value("config", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": invalid run identity: " + clip_text(e.what()));
  }
  return r;
}

void RunIdentity::write(const std::string& dir) const { write_file_atomic(join_path(dir, kRunFile), to_json().dump(2) + "\n"); }

std::string RunIdentity::new_id() {
  std::random_device rd;
  std::mt19937_64 g((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()) ^
                    static_cast<uint64_t>(std::time(nullptr)));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(g()));
  return buf;
}

const std::vector<std::string>& resumable_config_keys() {
  static const std::vector<std::string> k = {"save_every", "keep_checkpoints", "data", "val_data"};
  return k;
}

std::string config_key_option(const std::string& key) {
  if (key == "beta1" || key == "beta2") return "--adam-" + key;
  if (key == "head_type") return "--head";
  if (key == "val_split_field" || key == "val_split_value") return "--val-split";
  if (key == "shared_prefix_always") return "--shared-prefix";
  std::string o = key;
  std::replace(o.begin(), o.end(), '_', '-');
  return "--" + o;
}

std::string first_config_difference(const nlohmann::json& saved, const nlohmann::json& now,
                                    std::string* saved_value, std::string* now_value) {
  const auto& skip = resumable_config_keys();
  for (auto it = now.begin(); it != now.end(); ++it) {
    if (std::find(skip.begin(), skip.end(), it.key()) != skip.end()) continue;
    const nlohmann::json sv = saved.contains(it.key()) ? saved[it.key()] : nlohmann::json();
    if (!saved.contains(it.key())) continue;  // a key older checkpoints did not record
    bool same = sv == it.value();
    if (!same && sv.is_number() && it.value().is_number())
      same = sv.get<double>() == it.value().get<double>();
    if (!same) {
      *saved_value = clip_text(sv.dump(), 100);
      *now_value = clip_text(it.value().dump(), 100);
      return it.key();
    }
  }
  return "";
}

}  // namespace rmkit::train
