// Score-file reader: fields, UTF-8 lengths, RM-Bench detection, errors naming FILE:LINE; and an
// invariant check on the real RM-Bench asset scored with reward = length.
#include <gtest/gtest.h>

#include <cmath>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/eval/metrics/metrics.h"
#include "rmkit/eval/metrics/score_reader.h"
#include "test_util.h"

using namespace rmkit::eval;

TEST(MetricsScoreReader, Utf8Length) {
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("h\xC3\xA9llo \xF0\x9F\x98\x80"), 7u);  // "héllo 😀"
  EXPECT_EQ(utf8_length("\xE4\xB8\xAD\xE6\x96\x87"), 2u);        // "中文"
  EXPECT_EQ(utf8_length("a\xFF" "b"), 3u);                        // invalid byte counts once
}

TEST(MetricsScoreReader, ReadsRowsAndDetectsRmBench) {
  const std::string dir = rmkit::testing::temp_dir("score_reader");
  const std::string path = rmkit::join_path(dir, "scores.jsonl");
  rmkit::write_file_atomic(
      path,
      R"({"id":"a1","source":"LLMBar","category":"chat-hard","subset":"llmbar-natural","prompt":[{"role":"user","content":"q"}],"chosen":"h\u00e9llo \ud83d\ude00","rejected":"no","meta":{},"reward_chosen":1.5,"reward_rejected":-2})"
      "\n\n"
      R"({"id":"b2","source":"RM-Bench","category":"safety-refuse","subset":"refusals-dangerous","prompt":[],"chosen":[{"role":"assistant","content":"abc"},{"role":"assistant","content":"de"}],"rejected":"","meta":{"chosen_style":2,"rejected_style":0},"reward_chosen":0,"reward_rejected":0.25})"
      "\n"
      R"({"id":7,"source":"x","category":"c","subset":"s","chosen":"x","rejected":"yy","meta":{"chosen_style":1,"rejected_style":1},"reward_chosen":3,"reward_rejected":1})"
      "\n");
  auto v = read_score_file(path);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].file, "scores.jsonl");
  EXPECT_EQ(v[0].id, "a1");
  EXPECT_EQ(v[0].category, "chat-hard");
  EXPECT_EQ(v[0].subset, "llmbar-natural");
  EXPECT_DOUBLE_EQ(v[0].reward_chosen, 1.5);
  EXPECT_DOUBLE_EQ(v[0].reward_rejected, -2.0);
  EXPECT_EQ(v[0].len_chosen, 7u);
  EXPECT_EQ(v[0].len_rejected, 2u);
  EXPECT_FALSE(v[0].is_rm_bench());
  EXPECT_TRUE(v[0].domain.empty());
  EXPECT_EQ(v[1].chosen_style, 2);
  EXPECT_EQ(v[1].rejected_style, 0);
  EXPECT_EQ(v[1].domain, "safety-refuse");
  EXPECT_EQ(v[1].len_chosen, 5u);  // message list: contents summed
  EXPECT_EQ(v[1].len_rejected, 0u);
  EXPECT_FALSE(v[1].correct());
  EXPECT_EQ(v[2].id, "7");
  EXPECT_EQ(v[2].domain, "c");  // styles present -> RM-Bench row, domain = category
}

// A transcript row (HH-RLHF) keeps its whole conversation in chosen/rejected; rmkit score writes the
// final replies' lengths beside it, and those are the lengths the length bias uses.
TEST(MetricsScoreReader, ReplyLengthsWinOverTranscriptText) {
  const std::string transcript = "\n\nHuman: hi\n\nAssistant: hello";  // 31 code points, reply "hello"
  nlohmann::json row = {{"chosen", transcript}, {"rejected", transcript + "!"}, {"reward_chosen", 1},
                        {"reward_rejected", 0}, {"reply_length_chosen", 5}, {"reply_length_rejected", 6}};
  auto p = scored_pair_from_json(row, "hh.jsonl", "hh.jsonl:1");
  EXPECT_EQ(p.len_chosen, 5u);
  EXPECT_EQ(p.len_rejected, 6u);
  row.erase("reply_length_chosen");
  row.erase("reply_length_rejected");
  EXPECT_EQ(scored_pair_from_json(row, "hh.jsonl", "hh.jsonl:1").len_chosen, utf8_length(transcript));
  row["reply_length_chosen"] = -1;
  row["reply_length_rejected"] = 6;
  EXPECT_THROW(scored_pair_from_json(row, "hh.jsonl", "hh.jsonl:1"), rmkit::FormatError);
}

TEST(MetricsScoreReader, BadLinesNameFileAndLine) {
  const std::string dir = rmkit::testing::temp_dir("score_reader_bad");
  const std::string good =
      R"({"id":"a","category":"c","subset":"s","chosen":"x","rejected":"y","reward_chosen":1,"reward_rejected":0})";
  auto expect_error = [&](const std::string& bad, const std::string& what) {
    const std::string path = rmkit::join_path(dir, "bad.jsonl");
    rmkit::write_file_atomic(path, good + "\n" + bad + "\n");
    try {
      read_score_file(path);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const rmkit::FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("bad.jsonl:2:"), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  };
  expect_error(R"({"id":"b","chosen":"x","rejected":"y","reward_rejected":0})", "reward_chosen");
  expect_error(R"({"id":"b","chosen":"x","rejected":"y","reward_chosen":"high","reward_rejected":0})",
               "reward_chosen");
  expect_error(R"({"id":"b","chosen":"x",)", "invalid JSON");
  expect_error(R"({"id":"b","chosen":5,"rejected":"y","reward_chosen":1,"reward_rejected":0})", "chosen");
  expect_error(
      R"({"id":"b","chosen":"x","rejected":"y","reward_chosen":1,"reward_rejected":0,"meta":{"chosen_style":5,"rejected_style":0}})",
      "chosen_style");
  EXPECT_THROW(read_score_file(rmkit::join_path(dir, "missing.jsonl")), rmkit::IoError);
}

// Real RM-Bench rows scored with reward = response length: the RM then *is* the longer-wins
// baseline, so both accuracies must agree and Spearman(reward, length) must be exactly 1.
TEST(MetricsScoreReader, RmBenchAssetWithLengthRewardMatchesLengthBaseline) {
  const std::string src = rmkit::testing::asset("prefs/rm_bench_chat_code_safety.jsonl.gz");
  RMKIT_REQUIRE_ASSET(src);
  const std::string path = rmkit::join_path(rmkit::testing::temp_dir("rmb_len"), "rmb.jsonl");
  std::string out;
  rmkit::for_each_line(src, [&](const std::string& line, size_t) {
    auto row = nlohmann::json::parse(line);
    row["reward_chosen"] = static_cast<double>(utf8_length(row["chosen"].get<std::string>()));
    row["reward_rejected"] = static_cast<double>(utf8_length(row["rejected"].get<std::string>()));
    out += row.dump() + "\n";
    return true;
  });
  rmkit::write_file_atomic(path, out);
  auto pairs = read_score_file(path);
  ASSERT_EQ(pairs.size(), 7182u);
  auto j = compute_eval(pairs);
  EXPECT_DOUBLE_EQ(j["accuracy"]["overall"]["acc"].get<double>(),
                   j["length_bias"]["longer_wins"]["overall"]["acc"].get<double>());
  EXPECT_NEAR(j["length_bias"]["spearman_reward_length"].get<double>(), 1.0, 1e-12);
  // Domains: chat, code, safety (refuse + response merged); every pair has style indices.
  const auto& d = j["rm_bench"]["domains"];
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d["chat"]["n"].get<size_t>() + d["code"]["n"].get<size_t>() + d["safety"]["n"].get<size_t>(),
            7182u);
  EXPECT_EQ(d["safety"]["n"].get<size_t>(), 1413u + 1242u + 756u + 558u);
  // RM-Bench rows never feed RewardBench sections, although some reuse its subset names.
  EXPECT_TRUE(j["rewardbench"].is_null());
  // Detailed styles are longer, so a length "RM" is easy on Easy and bad on Hard.
  EXPECT_GT(j["rm_bench"]["easy"].get<double>(), j["rm_bench"]["hard"].get<double>());
}
