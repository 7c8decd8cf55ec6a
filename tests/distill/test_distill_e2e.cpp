// Real end to end: `rmkit serve` with stories260K as both policy and teacher, `rmkit distill` over
// real HTTP on a slice of the shared preference prompts. A 260K-parameter story model writes no
// parsable judgment (measured: 0 of 24, greedy), so the test checks that the pipeline runs, that
// its failure counts agree with the stage files and with the raw replies, and that the (empty)
// output is valid. Then the same served stories260K policy with the scripted teacher
// (scripted_teacher.h) takes every stage over real HTTP, and `rmkit train --loss
// margin-mse:1,sft:0.1` trains on that output.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>

#include "process_util.h"
#include "scripted_teacher.h"
#include "rmkit/core/file_io.h"
#include "rmkit/distill/parse.h"
#include "test_util.h"

namespace rmkit::distill {
namespace {

using json = nlohmann::json;

TEST(E2EDistill, ServeStoriesAsPolicyAndTeacherThenTrain) {
  const std::string model = ::rmkit::testing::asset("models/stories260K/stories260K.bin");
  const std::string tok = ::rmkit::testing::asset("models/stories260K/tok512.model");
  const std::string prefs = ::rmkit::testing::asset("prefs/ultrafeedback_sample.jsonl.gz");
  RMKIT_REQUIRE_ASSET(model);
  RMKIT_REQUIRE_ASSET(prefs);
  const std::string dir = ::rmkit::testing::temp_dir("distill_e2e");

  // a slice of real prompts (short ones: the model's context is 512 tokens)
  std::string rows;
  int n = 0;
  for_each_line(prefs, [&](const std::string& line, size_t) {
    auto j = json::parse(line);
    const std::string q = j["prompt"].back()["content"];
    if (q.size() > 160) return true;
    rows += json{{"id", j["id"]}, {"prompt", q}}.dump() + "\n";
    return ++n < 24;
  });
  const std::string input = join_path(dir, "prompts.jsonl");
  write_file_atomic(input, rows);
  // compact prompt files (replacing the built-ins through --prompts) so that two answers fit
  const std::string pdir = join_path(dir, "prompts");
  make_dirs(pdir);
  write_file_atomic(join_path(pdir, "judge.txt"),
                    "Q: {question}\nAnswer 1: {answer_a}\nAnswer 2: {answer_b}\nRate both from 1 to 10. Scores:");
  write_file_atomic(join_path(pdir, "refine.txt"),
                    "Q: {question}\nGood: {preferred}\nBad: {rejected}\nEdit Bad minimally between "
                    "<Start of Modified Response> and <End of Modified Response>.");

  const std::string port_file = join_path(dir, "port"), serve_log = join_path(dir, "serve.log");
  pid_t server = testing::spawn_rmkit({"serve", "--model", "policy=" + model, "--model", "teacher=" + model,
                                       "--tokenizer", tok, "--port", "0", "--port-file", port_file, "--threads", "1",
                                       "--max-running", "32"},
                                      serve_log);
  const int port = testing::wait_for_server(port_file, 120);
  if (port == 0) {
    kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
    FAIL() << "rmkit serve did not come up\n" << read_file(serve_log);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  const std::string work = join_path(dir, "work"), out = join_path(dir, "distilled.jsonl");
  const std::string log = join_path(dir, "distill.log");
  int st = testing::wait_child(
      testing::spawn_rmkit({"distill", "--input", input, "--policy", url, "--policy-model", "policy", "--teacher-url",
                            url, "--teacher-model", "teacher", "--workdir", work, "--output", out, "--prompts", pdir,
                            "--max-new-tokens", "48", "--judge-max-tokens", "12", "--refine-max-tokens", "96",
                            "--rescore-max-tokens", "8", "--concurrency", "8", "--keep-original-pairs", "--quiet"},
                           log),
      300);
  kill(server, SIGTERM);
  const int sst = testing::wait_child(server, 60);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(log) << read_file(serve_log);
  EXPECT_TRUE(sst != -1 && WIFEXITED(sst) && WEXITSTATUS(sst) == 0) << read_file(serve_log);

  // the counts: the last stage file's drop reasons are the summary's, and each judge drop's raw
  // reply really has no two scores in range
  const json summary = json::parse(read_file(join_path(work, "summary.json")));
  EXPECT_EQ(summary["items"], n);
  std::map<std::string, int64_t> from_stage;
  int64_t alive = 0;
  for_each_line(join_path(work, "stages/6_filter.jsonl"), [&](const std::string& line, size_t) {
    auto j = json::parse(line);
    if (!j.contains("dropped")) {
      ++alive;
      return true;
    }
    ++from_stage[j["dropped"].get<std::string>()];
    if (j["dropped"] == "judge_unparsable") EXPECT_FALSE(parse_two_scores(j["dropped_detail"])) << j.dump();
    if (j["dropped"] == "rescore_unparsable") EXPECT_FALSE(parse_one_score(j["dropped_detail"])) << j.dump();
    return true;
  });
  int64_t dropped_total = 0;
  for (auto it = summary["dropped"].begin(); it != summary["dropped"].end(); ++it) {
    EXPECT_EQ(from_stage[it.key()], it.value().get<int64_t>()) << it.key();
    dropped_total += it.value().get<int64_t>();
  }
  EXPECT_EQ(dropped_total + alive, n);
  const std::string text = read_file(log);
  EXPECT_NE(text.find("distill: wrote "), std::string::npos) << text;
  std::cerr << "[distill e2e] " << summary.dump() << "\n";

  int64_t written = 0;
  for_each_line(out, [&](const std::string& line, size_t) {
    auto j = json::parse(line);
    EXPECT_TRUE(j["meta"].contains("score_chosen") && j["meta"].contains("score_rejected")) << line;
    ++written;
    return true;
  });
  EXPECT_EQ(written, summary["rows_written"].get<int64_t>());

  // part 2: the served stories260K policy, the scripted teacher (orders 1 with a position bias of
  // 1, so stories-like ties still have a winner), every stage over real HTTP, then training
  testing::ScriptedTeacher teacher(/*position_bias=*/1.0);
  server = testing::spawn_rmkit({"serve", "--model", "policy=" + model, "--tokenizer", tok, "--port", "0", "--port-file",
                                 port_file + "2", "--threads", "1", "--max-running", "32"},
                                serve_log);
  const int port2 = testing::wait_for_server(port_file + "2", 120);
  ASSERT_GT(port2, 0) << read_file(serve_log);
  const std::string out2 = join_path(dir, "distilled2.jsonl");
  st = testing::wait_child(
      testing::spawn_rmkit({"distill", "--input", input, "--policy", "http://127.0.0.1:" + std::to_string(port2) + "/v1",
                            "--policy-model", "policy", "--teacher-url", teacher.base_url(), "--teacher-model", "scripted",
                            "--workdir", join_path(dir, "work2"), "--output", out2, "--max-new-tokens", "48",
                            "--orders", "1", "--concurrency", "8", "--quiet"},
                           log),
      300);
  kill(server, SIGTERM);
  testing::wait_child(server, 60);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(log);
  std::map<std::string, int> kinds;
  for (const auto& l : teacher.log()) ++kinds[l.kind];
  EXPECT_GT(kinds["judge"], 0);
  EXPECT_GT(kinds["respond"], 0);
  EXPECT_GT(kinds["refine"], 0);
  EXPECT_GT(kinds["rescore"], 0);
  int64_t rows2 = 0;
  for_each_line(out2, [&](const std::string& line, size_t) {
    auto j = json::parse(line);
    // the scripted refinement: the rejected text (whitespace-trimmed, as the tags' content is) + " good good"
    std::string rej = j["rejected"].get<std::string>();
    rej.erase(0, rej.find_first_not_of(" \n"));
    rej.erase(rej.find_last_not_of(" \n") + 1);
    EXPECT_EQ(j["chosen"].get<std::string>(), rej + " good good");
    ++rows2;
    return true;
  });
  ASSERT_GT(rows2, 0);
  auto tr = ::rmkit::testing::run_rmkit(
      "train --model " + ::rmkit::testing::shell_quote(model) + " --tokenizer " + ::rmkit::testing::shell_quote(tok) +
      " --data " + ::rmkit::testing::shell_quote(out2) +
      " --loss margin-mse:1,sft:0.1 --epochs 1 --batch-size 4 --val-fraction 0 --progress off --output " +
      ::rmkit::testing::shell_quote(join_path(dir, "rm")) + " --threads 2");
  ASSERT_EQ(tr.exit_code, 0) << tr.err;
  EXPECT_TRUE(path_exists(join_path(join_path(dir, "rm"), "rmkit.json"))) << tr.err;
}

}  // namespace
}  // namespace rmkit::distill
