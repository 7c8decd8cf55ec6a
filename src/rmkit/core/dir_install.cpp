#include "rmkit/core/dir_install.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit {
namespace fs = std::filesystem;

namespace {

struct InstallTemp {
  std::string target_name, kind;
  long pid = 0;
};

// ".NAME.<kind>-<pid>" with kind "new" or "old"; false for any other name.
bool parse_install_temp(const std::string& name, InstallTemp* out) {
  if (name.size() < 2 || name[0] != '.') return false;
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash < 5) return false;
  const std::string digits = name.substr(dash + 1);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  for (const char* kind : {"new", "old"}) {
    const std::string suffix = std::string(".") + kind;
    if (name.compare(dash - suffix.size(), suffix.size(), suffix) != 0) continue;
    out->target_name = name.substr(1, dash - suffix.size() - 1);
    out->kind = kind;
    out->pid = std::strtol(digits.c_str(), nullptr, 10);
    return !out->target_name.empty();
  }
  return false;
}

std::set<std::string> entry_names(const fs::path& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::directory_iterator(dir)) s.insert(e.path().filename().string());
  return s;
}

void rename_or_throw(const fs::path& from, const fs::path& to, const std::string& what) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw IoError(to.string() + ": cannot " + what + " (from " + from.string() + "): " + ec.message());
}

// Replaces target with the single entry `from` (a file, or a directory: no atomic rename over a
// non-empty directory exists, so that one is removed first).
void move_entry(const fs::path& from, const fs::path& target) {
  std::error_code ec;
  if (fs::is_directory(from, ec) || fs::is_directory(target, ec)) fs::remove_all(target, ec);
  rename_or_throw(from, target, "move the saved file into place");
}

}  // namespace

std::string install_temp_path(const std::string& target_in, const std::string& kind, long pid) {
  std::string target = target_in;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  const std::string parent = parent_dir(target);
  return join_path(parent.empty() ? "." : parent, "." + file_name(target) + "." + kind + "-" + std::to_string(pid));
}

void install_staged_dir(const std::string& staged, const std::string& target_in, const std::string& commit_file,
                        const InstallHook& hook) {
  auto at = [&](const std::string& point) {
    if (hook) hook(point);
  };
  std::string target = target_in;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  InstallTemp t;
  const long pid = parse_install_temp(file_name(staged), &t) ? t.pid : static_cast<long>(::getpid());
  std::error_code ec;
  if (!fs::exists(target, ec)) {
    rename_or_throw(staged, target, "move the saved directory into place");
    at("installed");
    return;
  }
  if (!fs::is_directory(target, ec)) throw IoError(target + ": exists and is not a directory");
  const std::set<std::string> staged_names = entry_names(staged);
  const std::set<std::string> target_names = entry_names(target);
  const bool dedicated = std::includes(staged_names.begin(), staged_names.end(), target_names.begin(), target_names.end());
  if (dedicated) {
    const std::string old = install_temp_path(target, "old", pid);
    fs::remove_all(old, ec);
    rename_or_throw(target, old, "move the previous copy aside");
    at("moved-old-aside");
    rename_or_throw(staged, target, "move the saved directory into place");
    at("installed");
    fs::remove_all(old, ec);
    at("removed-old");
    return;
  }
  // In place, the commit file last. A staged copy without it has either committed already (then it
  // is empty) or never had one (then its files simply move in).
  const fs::path commit_new = fs::path(staged) / commit_file;
  const bool has_commit = fs::exists(commit_new, ec);
  if (has_commit) {
    fs::remove(fs::path(target) / commit_file, ec);
    if (ec) throw IoError(target + "/" + commit_file + ": cannot remove the previous copy: " + ec.message());
    at("removed-old-commit");
  }
  for (const std::string& n : staged_names) {
    if (n == commit_file) continue;
    move_entry(fs::path(staged) / n, fs::path(target) / n);
    at("moved " + n);
  }
  if (has_commit) {
    rename_or_throw(commit_new, fs::path(target) / commit_file, "move the saved file into place");
    at("committed");
  }
  fs::remove_all(staged, ec);
  at("removed-staged");
}

void write_and_install_dir(const std::string& target_in, const std::string& commit_file,
                           const std::function<void(const std::string& tmp)>& write, const InstallHook& hook) {
  std::string target = target_in;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  const std::string parent = parent_dir(target);
  make_dirs(parent.empty() ? "." : parent);
  const long pid = ::getpid();
  const std::string tmp = install_temp_path(target, "tmp", pid), staged = install_temp_path(target, "new", pid);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::remove_all(staged, ec);
  try {
    make_dirs(tmp);
    write(tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  rename_or_throw(tmp, staged, "mark the saved copy complete");
  if (hook) hook("staged");
  install_staged_dir(staged, target, commit_file, hook);
}

std::vector<std::string> recover_installs(const std::string& dir, const std::string& commit_file,
                                          const std::string& only_name) {
  std::vector<std::string> done;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return done;
  std::vector<std::pair<fs::path, InstallTemp>> news, olds;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    InstallTemp t;
    if (!parse_install_temp(e.path().filename().string(), &t)) continue;
    if (t.pid == ::getpid() || (!only_name.empty() && t.target_name != only_name)) continue;
    (t.kind == "new" ? news : olds).emplace_back(e.path(), t);
  }
  // oldest first, so the newest complete copy is the one left installed
  std::sort(news.begin(), news.end(), [](const auto& a, const auto& b) {
    std::error_code e1, e2;
    return fs::last_write_time(a.first, e1) < fs::last_write_time(b.first, e2);
  });
  for (const auto& [path, t] : news) {
    const std::string target = join_path(dir, t.target_name);
    if (rmkit_temp_pid(t.target_name) > 0) {
      fs::remove_all(path, ec);
      done.push_back("removed " + path.string() + " (the save of a temp)");
      continue;
    }
    install_staged_dir(path.string(), target, commit_file);
    done.push_back("finished the interrupted save of " + target + " from " + path.string());
  }
  for (const auto& [path, t] : olds) {
    const std::string target = join_path(dir, t.target_name);
    if (rmkit_temp_pid(t.target_name) == 0 && !fs::exists(target, ec)) {
      rename_or_throw(path, target, "restore the previous copy");
      done.push_back("restored " + target + " from " + path.string());
    } else {
      fs::remove_all(path, ec);
      done.push_back("removed " + path.string() + " (the previous copy of an installed save)");
    }
  }
  return done;
}

}  // namespace rmkit
