// Rows that only turn out bad once a model's chat template is known (a prompt role it cannot
// render) are malformed rows like any other in train, score and eval: one error naming the input's
// file, line and field, or skipped with --skip-bad; eval names the input line, not the row count;
// and the length bias of transcript rows (HH-RLHF) is measured on the final replies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_hardening_util.h"
#include "rmkit/core/file_io.h"
#include "rmkit/eval/metrics/score_reader.h"
#include "rmkit/train/reward_model.h"
#include "test_util.h"

namespace rmkit {
namespace {

using testing::asset;
using testing::run_rmkit;
using testing::shell_quote;
using hardening::kModel;
using hardening::kTok;
using hardening::read_jsonl;

// A reward model directory (stories260K with a fresh head, chat template plain) under `dir`.
std::string make_rm(const std::string& dir) {
  auto m = train::load_reward_model(asset(kModel), asset(kTok), train::HeadConfig(), /*require_head=*/false);
  train::RewardModelMeta meta;
  meta.chat_template = "plain";
  const std::string out = join_path(dir, "rm");
  train::save_reward_model(out, *m.model, m.tokenizer.get(), meta);
  return out;
}

std::string row(const std::string& role, const std::string& q, const std::string& chosen, const std::string& rejected) {
  return nlohmann::json{{"prompt", {{{"role", role}, {"content", q}}}}, {"chosen", chosen}, {"rejected", rejected}}
             .dump() + "\n";
}

TEST(CliBadRows, UnsupportedPromptRoleIsAMalformedRow) {
  RMKIT_REQUIRE_ASSET(asset(kModel));
  const std::string dir = testing::temp_dir("cli_bad_role");
  const std::string rm = make_rm(dir);
  const std::string data = join_path(dir, "d.jsonl");
  write_file_atomic(data, row("user", "Tell a story", "Once upon a time there was a cat.", "cat a was") +
                              row("user", "Tell another", "A dog ran home.", "home ran") +
                              row("tool", "{\"result\": 3}", "It is three.", "three") +
                              row("user", "And one more", "The sun came up.", "up came"));
  const std::string want = data + ":3: field 'prompt[0].role': role 'tool' is not supported by chat template 'plain'";
  const std::string train = "train --model " + shell_quote(asset(kModel)) + " --tokenizer " + shell_quote(asset(kTok)) +
                            " --chat-template plain --data " + shell_quote(data) +
                            " --max-steps 1 --batch-size 2 --val-fraction 0 --progress off --output ";
  auto r = run_rmkit(train + shell_quote(join_path(dir, "t1")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
  r = run_rmkit(train + shell_quote(join_path(dir, "t2")) + " --skip-bad");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(want), std::string::npos) << r.err;  // logged as skipped

  const std::string score = "score --model " + shell_quote(rm) + " --data " + shell_quote(data) + " --output ";
  const std::string s = join_path(dir, "s.jsonl");
  r = run_rmkit(score + shell_quote(s));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
  r = run_rmkit(score + shell_quote(s) + " --skip-bad");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = read_jsonl(s);
  ASSERT_EQ(rows.size(), 4u);  // aligned with the input
  EXPECT_TRUE(rows[2]["reward_chosen"].is_null());
  EXPECT_EQ(rows[2]["skipped"].get<std::string>().rfind("malformed row: field 'prompt[0].role'", 0), 0u) << rows[2];
  EXPECT_TRUE(rows[3]["reward_chosen"].is_number());

  const std::string ev = "eval --model " + shell_quote(rm) + " --data " + shell_quote(data) + " --output ";
  r = run_rmkit(ev + shell_quote(join_path(dir, "e1")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
  r = run_rmkit(ev + shell_quote(join_path(dir, "e2")) + " --skip-bad");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(read_file(join_path(dir, "e2/eval.json")));
  EXPECT_EQ(j["n_pairs"], 3);
  std::filesystem::remove_all(dir);
}

// A dropped row (chosen == rejected) before a bad one: the error names the bad row's own line.
TEST(CliBadRows, EvalNamesTheInputLine) {
  RMKIT_REQUIRE_ASSET(asset(kModel));
  const std::string dir = testing::temp_dir("cli_eval_line");
  const std::string rm = make_rm(dir);
  const std::string data = join_path(dir, "d.jsonl");
  auto with_meta = [](const std::string& r, const nlohmann::json& meta) {
    auto j = nlohmann::json::parse(r);
    j["meta"] = meta;
    return j.dump() + "\n";
  };
  write_file_atomic(data, row("user", "a", "One.", "Two.") + row("user", "b", "Same.", "Same.") +
                              with_meta(row("user", "c", "Three.", "Four."), 5));
  auto r = run_rmkit("eval --model " + shell_quote(rm) + " --data " + shell_quote(data) + " --output " +
                     shell_quote(join_path(dir, "e")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(data + ":3: field 'meta': expected an object"), std::string::npos) << r.err;

  // a style index without its partner is refused when read, at its line (not a -1 written into
  // the scored row for eval to trip over)
  write_file_atomic(data, row("user", "a", "One.", "Two.") + row("user", "b", "Same.", "Same.") +
                              with_meta(row("user", "c", "Three.", "Four."), {{"chosen_style", 1}}));
  r = run_rmkit("eval --model " + shell_quote(rm) + " --data " + shell_quote(data) + " --output " +
                shell_quote(join_path(dir, "e")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(data + ":3: field 'meta.chosen_style': chosen_style and rejected_style must come together"),
            std::string::npos)
      << r.err;
  std::filesystem::remove_all(dir);
}

// Average ranks (ties share their mean rank), then Pearson: Spearman's rho, computed here
// independently of the library.
double spearman_rho(const std::vector<double>& x, const std::vector<double>& y) {
  auto ranks = [](const std::vector<double>& v) {
    std::vector<size_t> o(v.size());
    for (size_t i = 0; i < o.size(); ++i) o[i] = i;
    std::sort(o.begin(), o.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < o.size();) {
      size_t k = i;
      while (k + 1 < o.size() && v[o[k + 1]] == v[o[i]]) ++k;
      for (size_t t = i; t <= k; ++t) r[o[t]] = (static_cast<double>(i + k) / 2.0) + 1.0;
      i = k + 1;
    }
    return r;
  };
  auto rx = ranks(x), ry = ranks(y);
  double mx = 0, my = 0;
  for (size_t i = 0; i < rx.size(); ++i) mx += rx[i], my += ry[i];
  mx /= rx.size();
  my /= ry.size();
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

// The final assistant reply of an HH transcript: after the last "\n\nAssistant:", one space dropped.
std::string hh_reply(const std::string& t) {
  std::string r = t.substr(t.rfind("\n\nAssistant:") + 12);
  if (!r.empty() && r[0] == ' ') r.erase(0, 1);
  return r;
}

TEST(CliBadRows, LengthBiasOfTranscriptsUsesTheFinalReplies) {
  RMKIT_REQUIRE_ASSET(asset(kModel));
  const std::string dir = testing::temp_dir("cli_hh_length");
  const std::string rm = make_rm(dir);
  const std::string data = join_path(dir, "hh.jsonl");
  std::string text;
  for_each_line(asset("raw/hh-rlhf-harmless-base/test.jsonl.gz"), [&](const std::string& l, size_t n) {
    text += l + "\n";
    return n < 16;
  });
  write_file_atomic(data, text);
  const std::string out = join_path(dir, "e");
  auto r = run_rmkit("eval --model " + shell_quote(rm) + " --data " + shell_quote(data) + " --max-length 128 --output " +
                     shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto scores = read_jsonl(join_path(out, "scores_hh.jsonl"));
  ASSERT_EQ(scores.size(), 16u);
  std::vector<double> rewards, lengths, transcript_lengths;
  for (const auto& s : scores) {
    for (const char* side : {"chosen", "rejected"}) {
      const std::string transcript = s.at(side).get<std::string>();  // the row keeps its transcript
      const size_t reply = eval::utf8_length(hh_reply(transcript));
      EXPECT_EQ(s.at(std::string("reply_length_") + side).get<size_t>(), reply);
      rewards.push_back(s.at(std::string("reward_") + side).get<double>());
      lengths.push_back(static_cast<double>(reply));
      transcript_lengths.push_back(static_cast<double>(eval::utf8_length(transcript)));
    }
  }
  const double want = spearman_rho(rewards, lengths);
  ASSERT_NE(want, spearman_rho(rewards, transcript_lengths));  // the data tells the two apart
  auto j = nlohmann::json::parse(read_file(join_path(out, "eval.json")));
  EXPECT_NEAR(j["length_bias"]["spearman_reward_length"].get<double>(), want, 1e-12);
  // re-evaluating the written scores gives the same number
  const std::string out2 = join_path(dir, "e2");
  r = run_rmkit("eval --scores " + shell_quote(join_path(out, "scores_hh.jsonl")) + " --output " + shell_quote(out2));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j2 = nlohmann::json::parse(read_file(join_path(out2, "eval.json")));
  EXPECT_NEAR(j2["length_bias"]["spearman_reward_length"].get<double>(), want, 1e-12);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rmkit
