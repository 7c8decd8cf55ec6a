// The whole pipeline against the scripted teacher over real HTTP (scripted_teacher.h): the rows
// carry exactly the rule's scores and edits, both presentation orders are asked, faults are retried
// or reported as specified, modes, resume from the cache, changed settings and budgets.
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "rmkit/core/file_io.h"
#include "rmkit/distill/http_chat_client.h"
#include "rmkit/distill/parse.h"
#include "rmkit/distill/pipeline.h"
#include "scripted_teacher.h"
#include "test_util.h"

namespace rmkit::distill {
namespace {

using json = nlohmann::json;
using testing::ScriptedTeacher;
using testing::quality;

struct Row {
  std::string q, chosen, rejected;
};

// Pairs whose rule outcome is known: refined = rejected + " good good".
std::string write_input(const std::string& dir, const std::vector<Row>& rows) {
  std::string text;
  for (size_t i = 0; i < rows.size(); ++i)
    text += json{{"id", "r" + std::to_string(i)},
                 {"prompt", rows[i].q},
                 {"chosen", rows[i].chosen},
                 {"rejected", rows[i].rejected}}
                .dump() +
            "\n";
  const std::string path = join_path(dir, "in.jsonl");
  write_file_atomic(path, text);
  return path;
}

const std::vector<Row>& clean_rows() {
  static const std::vector<Row> rows = {
      {"Question zero?", "Answer zero is good, good and good.", "Answer zero is fine and good."},
      {"Question one?", "An answer that is good and good.", "An answer that is plain."},
      {"Question two (tie)?", "Tied answer, good.", "Other tied answer, good."},
      {"Question three?", "A parseable answer, good good.", "NOPARSE answer here."},
      {"Question four?", "A short plain answer here.", "A much longer good good answer."},  // label wrong
      {"Question five?", "Good? No: good good good.", "ok"},            // refinement edits too much
  };
  return rows;
}

struct Fixture {
  std::string dir, input;
  DistillConfig cfg;
  HttpClientConfig hc;
  explicit Fixture(const std::string& tag, const ScriptedTeacher& t, const std::vector<Row>& rows = clean_rows()) {
    dir = ::rmkit::testing::temp_dir(tag);
    input = write_input(dir, rows);
    cfg.input = input;
    cfg.workdir = join_path(dir, "work");
    cfg.output = join_path(dir, "out.jsonl");
    cfg.teacher_model = "scripted";
    hc.base_url = t.base_url();
    hc.timeout_s = 5;
  }
  DistillSummary run(RunnerConfig rc = {}, CallRunner** keep = nullptr) {
    rc.progress = false;
    if (rc.backoff_base_s == 0.5) rc.backoff_base_s = 0.01;
    make_dirs(cfg.workdir);
    CallCache cache(join_path(cfg.workdir, "calls.sqlite"));
    HttpChatClient client(hc);
    CallRunner runner(cache, rc);
    DistillClients clients;
    clients.teacher = &client;
    auto s = run_distill(cfg, clients, runner, PromptSet::load());
    last_totals = runner.totals();
    return s;
  }
  std::vector<json> rows() const {
    std::vector<json> out;
    for_each_line(cfg.output, [&](const std::string& l, size_t) {
      out.push_back(json::parse(l));
      return true;
    });
    return out;
  }
  CallTotals last_totals;
};

TEST(DistillPipeline, RowsCarryTheRulesScoresAndEditsAndBothOrdersAreAsked) {
  ScriptedTeacher teacher(/*position_bias=*/1.0);
  Fixture f("distill_rule", teacher);
  DistillSummary s = f.run();
  // expected by the rule: items 0, 1, 4 survive (2 tie, 3 unparsable, 5 edit ratio)
  EXPECT_EQ(s.dropped["tie"], 1);
  EXPECT_EQ(s.dropped["judge_unparsable"], 1);
  EXPECT_EQ(s.dropped["edit_ratio_above_max"], 1);
  auto rows = f.rows();
  ASSERT_EQ(rows.size(), 3u);
  const std::vector<size_t> kept = {0, 1, 4};
  for (size_t k = 0; k < kept.size(); ++k) {
    const Row& in = clean_rows()[kept[k]];
    const json& r = rows[k];
    // the teacher's winner is the one with more "good"s; for row 4 that is the labelled rejected
    const bool swap = quality(in.rejected) > quality(in.chosen);
    const std::string loser = swap ? in.chosen : in.rejected;
    EXPECT_EQ(r["id"], "r" + std::to_string(kept[k]) + "#refined");
    EXPECT_EQ(r["rejected"], loser);
    EXPECT_EQ(r["chosen"], loser + " good good");
    EXPECT_EQ(r["label_source"], "teacher-refined");
    EXPECT_EQ(r["teacher_response"], "teacher says good good good");
    // re-score: quality of the edit; rejected: its quality + half the position bias (both orders)
    EXPECT_EQ(r["meta"]["score_chosen"].get<double>(), quality(loser + " good good"));
    EXPECT_EQ(r["meta"]["score_rejected"].get<double>(), quality(loser) + 0.5);
    EXPECT_DOUBLE_EQ(r["meta"]["edit_ratio"].get<double>(), normalized_edit_distance(loser, loser + " good good"));
    EXPECT_EQ(r["meta"]["teacher"], "scripted");
    EXPECT_EQ(r["meta"]["source_id"], "r" + std::to_string(kept[k]));
    EXPECT_EQ(r["prompt"][0]["content"], in.q);
  }
  // both presentation orders: for every judged pair, each answer was shown first once
  std::map<std::string, std::set<std::string>> first_shown;
  for (const auto& l : teacher.log()) {
    if (l.kind != "judge") continue;
    const std::string c = json::parse(l.body)["messages"][0]["content"];
    const size_t q0 = c.find("[Question]\n") + 11;
    const std::string q = c.substr(q0, c.find('\n', q0) - q0);
    const size_t a0 = c.find("[The Start of Assistant 1's Answer]\n") + 36;
    first_shown[q].insert(c.substr(a0, c.find('\n', a0) - a0));
  }
  for (const auto& row : clean_rows()) {
    ASSERT_EQ(first_shown[row.q].size(), 2u) << row.q;
    EXPECT_TRUE(first_shown[row.q].count(row.chosen) && first_shown[row.q].count(row.rejected));
  }
  // the output trains directly: rmkit's reader takes it with scores and teacher responses
  auto pairs_out = f.rows();
  EXPECT_TRUE(pairs_out[0]["meta"].contains("score_chosen"));
}

TEST(DistillPipeline, OneOrderKeepsThePositionBias) {
  ScriptedTeacher teacher(/*position_bias=*/1.0);
  Fixture f("distill_one_order", teacher);
  f.cfg.orders = 1;
  f.cfg.mode = "scored";
  f.run();
  int judge_calls = 0;
  for (const auto& l : teacher.log()) judge_calls += l.kind == "judge";
  EXPECT_EQ(judge_calls, 6);  // one per pair
  for (const auto& r : f.rows()) {
    const double sc = r["meta"]["score_chosen"], sr = r["meta"]["score_rejected"];
    // exactly one side carries the whole bias of 1
    EXPECT_TRUE(sc == quality(r["chosen"]) + 1 || sr == quality(r["rejected"]) + 1) << r.dump();
  }
}

TEST(DistillPipeline, ModesAgreementAndOriginalPairs) {
  ScriptedTeacher teacher;
  {
    Fixture f("distill_binary", teacher);
    f.cfg.mode = "binary";
    f.cfg.agree_with_labels = true;
    DistillSummary s = f.run();
    EXPECT_EQ(s.dropped["disagrees_with_label"], 1);  // row 4
    auto rows = f.rows();
    ASSERT_EQ(rows.size(), 3u);  // 0, 1, 5 (2 tie, 3 unparsable, 4 disagrees)
    for (const auto& r : rows) {
      EXPECT_EQ(r["label_source"], "teacher-binary");
      EXPECT_FALSE(r["meta"].contains("score_chosen"));
    }
  }
  {
    Fixture f("distill_keep_orig", teacher);
    f.cfg.keep_original_pairs = true;
    f.run();
    auto rows = f.rows();
    // judged pairs 0, 1, 4, 5 plus refined 0, 1, 4
    ASSERT_EQ(rows.size(), 7u);
    EXPECT_EQ(rows[0]["id"], "r0#judged");
    EXPECT_EQ(rows[1]["id"], "r0#refined");
    EXPECT_EQ(rows[0]["meta"]["score_chosen"].get<double>(), quality(clean_rows()[0].chosen));
  }
}

TEST(DistillPipeline, FaultsAreRetriedOrReported) {
  ScriptedTeacher teacher(0, /*slow_ms=*/1500);
  std::vector<Row> rows = {
      {"RATELIMIT question?", "Good answer, good.", "Weak answer, rather long."},
      {"FAIL5XX question?", "Good answer, good.", "Weak answer, rather long."},
      {"SLOWREPLY question?", "Good answer, good.", "Weak answer, rather long."},
      {"MALFORMED question?", "Good answer, good.", "Weak answer, rather long."},
      {"BADREQUEST question?", "Good answer, good.", "Weak answer, rather long."},
  };
  Fixture f("distill_faults", teacher, rows);
  f.hc.timeout_s = 1.0;
  f.hc.api_key = "sk-test-SECRETKEY";
  const auto t0 = std::chrono::steady_clock::now();
  DistillSummary s = f.run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(s.rows_written, 4);
  EXPECT_EQ(s.dropped["judge_call_failed"], 1);
  ASSERT_EQ(s.dropped.size(), 1u);
  const auto& t = f.last_totals;
  // every distinct RATELIMIT request (2 judge orders, teacher, refine, rescore) was limited once
  EXPECT_EQ(t.retried.at("rate_limited"), 5);
  EXPECT_EQ(t.retried.at("server_error"), 10);  // twice each
  EXPECT_EQ(t.retried.at("timeout"), 5);
  EXPECT_EQ(t.retried.at("malformed_reply"), 5);
  EXPECT_EQ(t.failures.at("client_error"), 2);  // both judge orders of BADREQUEST, not retried
  EXPECT_GE(secs, 1.0);  // Retry-After: 1 was honoured
  // the 400's message reached the stage file
  const std::string judge = read_file(join_path(join_path(f.cfg.workdir, "stages"), "2_judge.jsonl"));
  EXPECT_NE(judge.find("context too long for this scripted teacher"), std::string::npos);
  // the API key is in no file of the work directory
  for (const char* name : {"manifest.json", "summary.json", "metrics.jsonl", "stages/2_judge.jsonl", "stages/4_refine.jsonl"})
    EXPECT_EQ(read_file(join_path(f.cfg.workdir, name)).find("SECRETKEY"), std::string::npos) << name;
}

TEST(DistillPipeline, MetricsCountEachStagesOwnCalls) {
  // judge + tie re-grade are one stage and the filter sends nothing: each stage's record counts the
  // calls of all its run()s, not the last run() before it
  ScriptedTeacher teacher;
  Fixture f("distill_metrics", teacher);
  f.cfg.regrade_ties = true;
  f.run();
  std::map<std::string, int64_t> sent;
  int64_t total = 0;
  for_each_line(join_path(f.cfg.workdir, "metrics.jsonl"), [&](const std::string& l, size_t) {
    const json j = json::parse(l);
    sent[j["stage"].get<std::string>()] = j["calls"]["sent"].get<int64_t>();
    total += j["calls"]["sent"].get<int64_t>();
    return true;
  });
  int judge_calls = 0;
  for (const auto& l : teacher.log()) judge_calls += l.kind == "judge";
  EXPECT_EQ(judge_calls, 14);  // 6 pairs x 2 orders + the tie re-asked in both orders
  EXPECT_EQ(sent["candidates"], 0);
  EXPECT_EQ(sent["judge"], judge_calls);
  EXPECT_EQ(sent["filter"], 0);
  EXPECT_EQ(total, f.last_totals.sent);
  EXPECT_EQ(total, static_cast<int64_t>(teacher.log().size()));
}

TEST(DistillPipeline, ResumeSendsNothingAndSettingsChangesAreReported) {
  ScriptedTeacher teacher;
  Fixture f("distill_resume", teacher);
  f.run();
  const std::string first = read_file(f.cfg.output);
  const size_t calls = teacher.log().size();
  f.run();
  EXPECT_EQ(teacher.log().size(), calls);  // no network I/O
  EXPECT_EQ(f.last_totals.sent, 0);
  EXPECT_EQ(read_file(f.cfg.output), first);
  f.cfg.min_margin = 2.0;
  try {
    f.run();
    FAIL() << "changed setting accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("build.min_margin: 1.0 -> 2.0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(f.cfg.output), first);  // nothing overwritten
  f.cfg.restage = true;
  f.run();
  EXPECT_EQ(teacher.log().size(), calls);  // the filter needs no new calls
  EXPECT_EQ(f.rows().size(), 0u);          // every margin is exactly 2 by the rule: none exceeds 2
}

TEST(DistillPipeline, BudgetStopIsResumable) {
  ScriptedTeacher teacher;
  Fixture whole("distill_budget_whole", teacher);
  whole.run();
  Fixture f("distill_budget", teacher);
  RunnerConfig rc;
  rc.max_calls = 7;
  rc.concurrency = 4;
  EXPECT_THROW(f.run(rc), BudgetReached);
  EXPECT_FALSE(path_exists(f.cfg.output));
  f.run();
  EXPECT_EQ(read_file(f.cfg.output), read_file(whole.cfg.output));
}

}  // namespace
}  // namespace rmkit::distill
