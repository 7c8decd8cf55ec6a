// Kill test: `rmkit distill` against the scripted teacher is killed with SIGKILL at several
// points (inside the judge, teacher-response, refine and re-score stages); after resuming, the
// output equals an uninterrupted run's byte for byte and the teacher answered no request twice.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>

#include "process_util.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/train/run_dir.h"
#include "scripted_teacher.h"
#include "test_util.h"

namespace rmkit::distill {
namespace {

using json = nlohmann::json;

std::string write_rows(const std::string& dir) {
  std::string text;
  for (int i = 0; i < 6; ++i) {
    std::string chosen = "Answer " + std::to_string(i) + " is good";
    for (int k = 0; k < i % 3 + 1; ++k) chosen += " and good";
    text += json{{"id", "k" + std::to_string(i)},
                 {"prompt", "Kill question " + std::to_string(i) + "?"},
                 {"chosen", chosen},
                 {"rejected", "Answer " + std::to_string(i) + " is only fine."}}
                .dump() +
            "\n";
  }
  const std::string path = join_path(dir, "in.jsonl");
  write_file_atomic(path, text);
  return path;
}

std::vector<std::string> distill_args(const std::string& url, const std::string& in, const std::string& dir) {
  return {"distill", "--input", in, "--teacher-url", url, "--teacher-model", "scripted", "--workdir",
          join_path(dir, "work"), "--output", join_path(dir, "out.jsonl"), "--concurrency", "1", "--quiet",
          "--backoff-base", "0.01"};
}

TEST(DistillKill, ResumeAfterSigkillGivesTheSameOutputAndNoRepeatedCall) {
  const std::string dir = ::rmkit::testing::temp_dir("distill_kill");
  const std::string in = write_rows(dir);
  // uninterrupted reference
  testing::ScriptedTeacher ref_teacher;
  const std::string ref_dir = join_path(dir, "ref");
  make_dirs(ref_dir);
  int st = testing::wait_child(testing::spawn_rmkit(distill_args(ref_teacher.base_url(), in, ref_dir), join_path(dir, "ref.log")), 120);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(join_path(dir, "ref.log"));
  const size_t total_calls = ref_teacher.log().size();
  ASSERT_GE(total_calls, 20u);

  // killed at answered-call counts spread over the stages: 6 pairs -> 12 judge calls, 6 teacher
  // responses, 6 refinements, 6 re-scores
  testing::ScriptedTeacher teacher;
  const std::vector<int> kill_at = {4, 14, 19, 26};
  std::atomic<size_t> next_kill{0};
  std::atomic<pid_t> child{0};
  teacher.set_before_answer([&](int answered) {
    if (next_kill < kill_at.size() && answered == kill_at[next_kill]) {
      kill(child.load(), SIGKILL);
      ++next_kill;
      return true;
    }
    return false;
  });
  const std::string run_dir = join_path(dir, "run");
  make_dirs(run_dir);
  const std::string log = join_path(dir, "run.log");
  int kills = 0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    child = testing::spawn_rmkit(distill_args(teacher.base_url(), in, run_dir), log);
    st = testing::wait_child(child, 120);
    ASSERT_NE(st, -1) << "distill hung\n" << read_file(log);
    if (WIFSIGNALED(st)) {
      EXPECT_EQ(WTERMSIG(st), SIGKILL);
      ++kills;
      EXPECT_FALSE(path_exists(join_path(run_dir, "out.jsonl")));  // no half-written output
      continue;
    }
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(log);
    break;
  }
  EXPECT_EQ(kills, static_cast<int>(kill_at.size()));
  EXPECT_EQ(read_file(join_path(run_dir, "out.jsonl")), read_file(join_path(ref_dir, "out.jsonl")));
  const auto counts = teacher.answered_counts();
  EXPECT_EQ(counts.size(), total_calls);  // every distinct call answered ...
  for (const auto& [body, n] : counts) EXPECT_EQ(n, 1) << "answered " << n << " times: " << clip_text(body, 200);

  // resuming the finished run sends nothing
  const size_t before = teacher.log().size();
  st = testing::wait_child(testing::spawn_rmkit(distill_args(teacher.base_url(), in, run_dir), log), 60);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(log);
  EXPECT_EQ(teacher.log().size(), before);

  // temps a killed writer left (its pid is gone) are removed at the next start
  const std::string work = join_path(run_dir, "work");
  const std::string dead = std::to_string(4194304 + 1);  // above Linux's pid_max: no such process
  const std::vector<std::string> temps = {join_path(work, "manifest.json.tmp." + dead),
                                          join_path(join_path(work, "stages"), "2_judge.jsonl.tmp." + dead)};
  for (const auto& t : temps) write_file_atomic(t, "half");
  st = testing::wait_child(testing::spawn_rmkit(distill_args(teacher.base_url(), in, run_dir), log), 60);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(log);
  for (const auto& t : temps) EXPECT_FALSE(path_exists(t)) << t;
  EXPECT_NE(read_file(log).find("removed a stale temp file"), std::string::npos);

  // one run per work directory: a second process is refused while the first holds it
  {
    const train::RunLock held(work);
    st = testing::wait_child(testing::spawn_rmkit(distill_args(teacher.base_url(), in, run_dir), log), 60);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 1);
    EXPECT_NE(read_file(log).find("in use by another rmkit process"), std::string::npos) << read_file(log);
  }
  EXPECT_EQ(teacher.log().size(), before);
}

}  // namespace
}  // namespace rmkit::distill
