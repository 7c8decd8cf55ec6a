// read_prefs on hand-made rows: detection, TRL message lists, error text with file:line,
// skip_bad and the drop counters.
#include "rmkit/core/error.h"
#include "rmkit/data/readers.h"
#include "test_util.h"

namespace rmkit::data {
namespace {

using nlohmann::json;

std::string write_tmp(const std::string& name, const std::string& content) {
  std::string dir = rmkit::testing::temp_dir("data_rows");
  std::string path = dir + "/" + name;
  write_file_atomic(path, content);
  return path;
}

std::string error_of(const std::string& path, const std::string& format = "auto") {
  try {
    read_prefs(path, format);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(DetectFormat, FromKeys) {
  EXPECT_EQ(detect_format(json::parse(
                R"({"id":"a","prompt":[{"role":"user","content":"q"}],"chosen":"x","rejected":"y","meta":{}})")),
            "normalized");
  EXPECT_EQ(detect_format(json::parse(R"({"prompt":"q","chosen":"x","rejected":"y"})")), "trl");
  EXPECT_EQ(detect_format(json::parse(
                R"({"chosen":[{"role":"user","content":"q"},{"role":"assistant","content":"x"}],
                    "rejected":[{"role":"user","content":"q"},{"role":"assistant","content":"y"}]})")),
            "trl");
  EXPECT_EQ(detect_format(json::parse(
                R"({"chosen":"\n\nHuman: q\n\nAssistant: x","rejected":"\n\nHuman: q\n\nAssistant: y"})")),
            "hh");
  EXPECT_EQ(detect_format(json::parse(
                R"({"id":1,"subset":"alpacaeval","prompt":"q","chosen":["a","b","c"],"rejected":["d","e","f"]})")),
            "rm-bench");
  EXPECT_EQ(detect_format(json::parse(R"({"prompt":"q","chosen":"x","rejected":"y","subset":"s","id":3})")),
            "rewardbench");
  EXPECT_EQ(detect_format(json::parse(R"({"question":"q","answer":"x"})")), "");
  EXPECT_EQ(detect_format(json::parse(R"([1,2])")), "");
}

TEST(TrlRows, MessageListsSplitOffSharedPrefix) {
  std::string path = write_tmp("trl.jsonl",
      // 1: prompt string, replies repeat it as a message list
      R"({"prompt":"Hi?","chosen":[{"role":"user","content":"Hi?"},{"role":"assistant","content":"Hello!"}],)"
      R"("rejected":[{"role":"user","content":"Hi?"},{"role":"assistant","content":"Go away."}],"score_chosen":7,"score_rejected":2})" "\n"
      // 2: implicit prompt: chosen/rejected are whole conversations
      R"({"chosen":[{"role":"system","content":"S"},{"role":"user","content":"U"},{"role":"assistant","content":"A1"}],)"
      R"("rejected":[{"role":"system","content":"S"},{"role":"user","content":"U"},{"role":"assistant","content":"A2"}]})" "\n"
      // 3: explicit prompt list, replies are only the assistant turn
      R"({"prompt":[{"role":"user","content":"P"}],"chosen":[{"role":"assistant","content":"c"}],)"
      R"("rejected":[{"role":"assistant","content":"r"}],"margin":1.5,"teacher_response":"t","attributes":[1,2.5]})" "\n"
      // 4: implicit prompts that disagree -> mismatched
      R"({"chosen":[{"role":"user","content":"U1"},{"role":"assistant","content":"a"}],)"
      R"("rejected":[{"role":"user","content":"U2"},{"role":"assistant","content":"b"}]})" "\n");
  ReadStats st;
  auto pairs = read_prefs(path, "trl", false, &st);
  EXPECT_EQ(st.rows, 4u);
  EXPECT_EQ(st.dropped_mismatched, 1u);
  ASSERT_EQ(pairs.size(), 3u);
  ASSERT_EQ(pairs[0].prompt.size(), 1u);
  EXPECT_EQ(pairs[0].prompt[0].content, "Hi?");
  EXPECT_EQ(pairs[0].chosen, "Hello!");
  EXPECT_EQ(pairs[0].rejected, "Go away.");
  EXPECT_EQ(*pairs[0].score_chosen, 7.0);
  EXPECT_EQ(*pairs[0].score_rejected, 2.0);
  EXPECT_FALSE(pairs[0].margin.has_value());
  ASSERT_EQ(pairs[1].prompt.size(), 2u);
  EXPECT_EQ(pairs[1].prompt[0].role, "system");
  EXPECT_EQ(pairs[1].prompt[1].content, "U");
  EXPECT_EQ(pairs[1].chosen, "A1");
  EXPECT_EQ(pairs[1].line, 2u);
  ASSERT_EQ(pairs[2].prompt.size(), 1u);
  EXPECT_EQ(pairs[2].chosen, "c");
  EXPECT_EQ(*pairs[2].margin, 1.5);
  EXPECT_EQ(pairs[2].teacher_response, "t");
  EXPECT_EQ(pairs[2].attributes, (std::vector<double>{1.0, 2.5}));
  EXPECT_FALSE(pairs[2].score_chosen.has_value());
}

TEST(RewardBenchRows, PromptStringAndSubset) {
  std::string path = write_tmp("rb.jsonl",
      R"({"prompt":"q","chosen":"x","rejected":"y","subset":"llmbar-natural","id":30,"chosen_model":"m"})" "\n");
  ReadStats st;
  auto pairs = read_prefs(path, "auto", false, &st);
  EXPECT_EQ(st.format, "rewardbench");
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].id, "30");
  EXPECT_EQ(pairs[0].subset, "llmbar-natural");
  EXPECT_EQ(pairs[0].raw["chosen_model"], "m");
}

TEST(MalformedRows, ErrorNamesFileLineAndField) {
  std::string good = R"({"prompt":"q","chosen":"x","rejected":"y"})";
  std::string path = write_tmp("bad.jsonl", good + "\n\n" + R"({"prompt":"q","chosen":5,"rejected":"y"})" + "\n");
  // Line 2 is blank (ignored); the bad row is on line 3.
  EXPECT_EQ(error_of(path), path + ":3: field 'chosen': expected a string or a message list");

  std::string p2 = write_tmp("bad2.jsonl", good + "\n{\"prompt\": \"q\", \n");
  EXPECT_EQ(error_of(p2).rfind(p2 + ":2: invalid JSON: ", 0), 0u) << error_of(p2);

  std::string p3 = write_tmp("bad3.jsonl",
      R"({"id":"a","prompt":[{"role":"user"}],"chosen":"x","rejected":"y","meta":{}})" "\n");
  EXPECT_EQ(error_of(p3), p3 + ":1: field 'prompt[0].content': missing");

  std::string p4 = write_tmp("bad4.jsonl",
      R"({"prompt":"q","chosen":"x","rejected":"y","meta":{"score_chosen":"high"}})" "\n");
  EXPECT_EQ(error_of(p4), p4 + ":1: field 'meta.score_chosen': expected a number");

  std::string p5 = write_tmp("bad5.jsonl",
      R"({"chosen":[{"role":"user","content":"q"},{"role":"assistant","content":"x"}],"rejected":[{"role":"user","content":"q"}]})" "\n");
  EXPECT_EQ(error_of(p5), p5 + ":1: field 'rejected': the last message must be from the assistant, got 'user'");

  std::string p6 = write_tmp("hh.jsonl", R"({"chosen":"no turns here","rejected":"x"})" "\n");
  EXPECT_EQ(error_of(p6, "hh"),
            p6 + ":1: field 'chosen': expected an HH transcript with a '\\n\\nAssistant:' turn");

  std::string p7 = write_tmp("arr.json", "[" + good + ", 7]");
  EXPECT_EQ(error_of(p7), p7 + ":element 2: expected a JSON object");
  std::string p8 = write_tmp("obj.json", good);
  EXPECT_EQ(error_of(p8), p8 + ": expected a JSON array of preference rows, got a JSON object");

  std::string p9 = write_tmp("what.jsonl", R"({"question":"q"})" "\n");
  EXPECT_EQ(error_of(p9), p9 + ":1: cannot detect the preference format from keys [question] "
                               "(expected normalized, trl, hh, rm-bench or rewardbench rows)");
  EXPECT_THROW(read_prefs(path, "yaml"), UsageError);
  EXPECT_THROW(read_prefs(path + ".missing"), IoError);
}

// RM-Bench style indices are checked when read (0..2, both or neither), so a scored row never
// carries a style the evaluation would refuse.
TEST(MalformedRows, StyleIndicesAreCheckedWhenRead) {
  std::string p1 = write_tmp("style1.jsonl",
      R"({"prompt":"q","chosen":"x","rejected":"y"})" "\n"
      R"({"prompt":"q","chosen":"x","rejected":"y","meta":{"chosen_style":1}})" "\n");
  EXPECT_EQ(error_of(p1), p1 + ":2: field 'meta.chosen_style': chosen_style and rejected_style must come together");
  std::string p2 = write_tmp("style2.jsonl",
      R"({"prompt":"q","chosen":"x","rejected":"y","chosen_style":0,"rejected_style":3})" "\n");
  EXPECT_EQ(error_of(p2), p2 + ":1: field 'rejected_style': expected an integer 0..2");
  std::string p3 = write_tmp("style3.jsonl",
      R"({"prompt":"q","chosen":"x","rejected":"y","meta":{"chosen_style":2,"rejected_style":0}})" "\n");
  auto ok = read_prefs(p3);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].chosen_style, 2);
  EXPECT_EQ(ok[0].rejected_style, 0);
}

TEST(MalformedRows, SkipBadCountsEveryRow) {
  std::string path = write_tmp("mixed.jsonl",
      std::string(R"({"prompt":"q1","chosen":"x","rejected":"y"})") + "\n" +
      "not json\n" +
      R"({"prompt":"q2","chosen":"x","rejected":["y"]})" + "\n" +
      R"({"prompt":"q3","chosen":"x","rejected":"x"})" + "\n" +
      R"({"prompt":"q4","chosen":"  \n","rejected":"y"})" + "\n" +
      R"({"prompt":"q5","chosen":"a","rejected":"b"})" + "\n");
  ReadStats st;
  auto pairs = read_prefs(path, "auto", /*skip_bad=*/true, &st);
  EXPECT_EQ(st.rows, 6u);
  EXPECT_EQ(st.skipped_bad, 2u);
  EXPECT_EQ(st.dropped_identical, 1u);
  EXPECT_EQ(st.dropped_empty, 1u);
  EXPECT_EQ(st.kept, 2u);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].prompt[0].content, "q1");
  EXPECT_EQ(pairs[1].prompt[0].content, "q5");
  EXPECT_EQ(pairs[1].line, 6u);
  ASSERT_EQ(st.first_errors.size(), 2u);
  EXPECT_EQ(st.first_errors[0].rfind(path + ":2: invalid JSON", 0), 0u);
  EXPECT_EQ(st.first_errors[1], path + ":3: field 'rejected[0]': expected a {role, content} object");
  // Without skip_bad the first bad row stops the read.
  EXPECT_EQ(error_of(path).rfind(path + ":2: invalid JSON", 0), 0u);
}

TEST(HhTranscript, SplitsTurns) {
  text::Conversation conv;
  std::string reply;
  split_hh_transcript("\n\nHuman: hi there\n\nAssistant:  two spaces\n\nHuman: and?\n\nAssistant: done",
                      "chosen", &conv, &reply);
  ASSERT_EQ(conv.size(), 3u);
  EXPECT_EQ(conv[0].role, "user");
  EXPECT_EQ(conv[0].content, "hi there");
  EXPECT_EQ(conv[1].role, "assistant");
  EXPECT_EQ(conv[1].content, " two spaces");  // only the separator space is dropped
  EXPECT_EQ(conv[2].content, "and?");
  EXPECT_EQ(reply, "done");
  split_hh_transcript("Human: q\n\nAssistant: a", "chosen", &conv, &reply);
  ASSERT_EQ(conv.size(), 1u);
  EXPECT_EQ(conv[0].content, "q");
  EXPECT_EQ(reply, "a");
}

TEST(ReadOptionsTest, KeepRawFalseDropsRows) {
  std::string path = write_tmp("k.jsonl", R"({"prompt":"q","chosen":"x","rejected":"y"})" "\n");
  ReadOptions o;
  o.keep_raw = false;
  auto pairs = read_prefs(path, o);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_TRUE(pairs[0].raw.is_null());
  EXPECT_EQ(read_prefs(path)[0].raw["prompt"], "q");
}

}  // namespace
}  // namespace rmkit::data
