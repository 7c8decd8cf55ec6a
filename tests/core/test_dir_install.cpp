// Installing a saved directory (core/dir_install.h) under kill -9: the process is killed (SIGKILL,
// in a forked child) at every step of a save that replaces step 1's model with step 3's, and the
// target must never pair one save's files with the other's weights; after recover_installs (the
// next start-up) it must hold one complete model, step 3's when the new copy was complete.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "rmkit/core/dir_install.h"
#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace rmkit {
namespace {

namespace fs = std::filesystem;
const std::vector<std::string> kFiles = {"config.json", "rmkit.json", "tokenizer.json", "model.safetensors"};

void write_text(const std::string& path, const std::string& s) { std::ofstream(path) << s; }

// A fake model of `step`: every file names its step; `hook("wrote N")` after each file.
void write_model(const std::string& dir, int step, const InstallHook& hook = {}) {
  for (size_t i = 0; i < kFiles.size(); ++i) {
    write_text(join_path(dir, kFiles[i]), kFiles[i] + " of step " + std::to_string(step));
    if (hook) hook("wrote " + kFiles[i]);
  }
}

// "step N" when every model file is there and of step N; "absent" (no directory), "no weights"
// (no model.safetensors: a load fails) or "mixed: ..." otherwise.
std::string model_state(const std::string& dir) {
  if (!fs::exists(dir)) return "absent";
  if (!fs::exists(join_path(dir, "model.safetensors"))) return "no weights";
  std::string steps;
  int first = -1;
  bool same = true;
  for (const auto& f : kFiles) {
    const std::string p = join_path(dir, f);
    if (!fs::exists(p)) return "mixed: " + f + " missing";
    const std::string s = read_file(p);
    const int step = std::stoi(s.substr(s.rfind(' ') + 1));
    if (first < 0) first = step;
    same = same && step == first;
    steps += f + "=" + std::to_string(step) + " ";
  }
  return same ? "step " + std::to_string(first) : "mixed: " + steps;
}

std::vector<std::string> leftovers(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.find(".new-") != std::string::npos || n.find(".old-") != std::string::npos) v.push_back(n);
  }
  return v;
}

// Saves step 3 over `target`, killing the process with SIGKILL at hook point number `kill_at` (-1:
// never). Returns the points passed, in order (the run with kill_at = -1 lists them all).
std::vector<std::string> save_step3(const std::string& target, int kill_at) {
  std::vector<std::string> points;
  InstallHook hook = [&](const std::string& p) {
    if (static_cast<int>(points.size()) == kill_at) ::kill(::getpid(), SIGKILL);
    points.push_back(p);
  };
  write_and_install_dir(target, kModelCommitFile, [&](const std::string& tmp) { write_model(tmp, 3, hook); }, hook);
  return points;
}

void run_killed_at_every_point(const std::string& tag, bool in_run_dir) {
  const std::string root = rmkit::testing::temp_dir(tag);
  auto reset = [&](const std::string& name) {
    const std::string parent = join_path(root, name);
    fs::remove_all(parent);
    const std::string target = join_path(parent, "best");
    make_dirs(target);
    write_model(target, 1);
    if (in_run_dir) {  // a run directory: the model's files beside the run's own
      write_text(join_path(target, "run.json"), "run");
      make_dirs(join_path(target, "checkpoints/step-1"));
    }
    return target;
  };
  const std::vector<std::string> points = save_step3(reset("dry"), -1);
  ASSERT_EQ(model_state(join_path(root, "dry/best")), "step 3");
  const size_t staged_at = std::find(points.begin(), points.end(), "staged") - points.begin();
  ASSERT_LT(staged_at, points.size());
  ASSERT_GE(points.size(), in_run_dir ? 10u : 8u);  // 4 writes, staged, and the install's steps

  for (size_t k = 0; k < points.size(); ++k) {
    SCOPED_TRACE("killed at '" + points[k] + "' (point " + std::to_string(k) + ")");
    const std::string target = reset("k" + std::to_string(k));
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      save_step3(target, static_cast<int>(k));
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child was not killed";

    // right after the kill: one whole model, or (briefly, between renames) none that loads
    const std::string now = model_state(target);
    EXPECT_EQ(now.rfind("mixed", 0), std::string::npos) << now;
    if (!in_run_dir) EXPECT_NE(now, "no weights");  // a dedicated directory is swapped whole

    // the next start-up finishes or rolls back the install; a complete new copy is never lost
    recover_installs(parent_dir(target), kModelCommitFile);
    EXPECT_EQ(model_state(target), k >= staged_at ? "step 3" : "step 1");
    EXPECT_TRUE(leftovers(parent_dir(target)).empty()) << leftovers(parent_dir(target)).front();
    if (in_run_dir) {
      EXPECT_EQ(read_file(join_path(target, "run.json")), "run");
      EXPECT_TRUE(fs::is_directory(join_path(target, "checkpoints/step-1")));
    }
  }
}

TEST(DirInstall, KillAtAnyStepLeavesOneWholeModelInADedicatedDirectory) {
  run_killed_at_every_point("install_dedicated", false);
}

TEST(DirInstall, KillAtAnyStepLeavesOneWholeModelInARunDirectory) {
  run_killed_at_every_point("install_in_place", true);
}

TEST(DirInstall, RecoveryRestoresThePreviousCopyWhenNoNewOneIsComplete) {
  const std::string root = rmkit::testing::temp_dir("install_restore");
  make_dirs(join_path(root, ".best.old-999999"));
  write_model(join_path(root, ".best.old-999999"), 1);
  // an incomplete write is not a copy to install; it is left for remove_run_temps
  make_dirs(join_path(root, ".best.tmp-999999"));
  const auto done = recover_installs(root, kModelCommitFile);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(model_state(join_path(root, "best")), "step 1");
  EXPECT_TRUE(fs::exists(join_path(root, ".best.tmp-999999")));
}

TEST(DirInstall, RecoveryLeavesOtherTargetsAloneWhenAskedForOne) {
  const std::string root = rmkit::testing::temp_dir("install_only");
  for (const char* n : {".run-a.new-999999", ".run-b.new-999999"}) {
    make_dirs(join_path(root, n));
    write_model(join_path(root, n), 2);
  }
  recover_installs(root, kModelCommitFile, "run-a");
  EXPECT_EQ(model_state(join_path(root, "run-a")), "step 2");
  EXPECT_EQ(model_state(join_path(root, "run-b")), "absent");
  EXPECT_TRUE(fs::exists(join_path(root, ".run-b.new-999999")));
}

}  // namespace
}  // namespace rmkit
