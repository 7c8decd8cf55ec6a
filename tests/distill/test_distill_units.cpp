// Unit tests of the distillation pieces against hand-computed values: reply parsing, tag
// extraction, edit distance, the both-orders average, the filters, prompt placeholders, cache keys
// and the SQLite cache, and the call runner's dedup / cache / budget behaviour.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "rmkit/core/file_io.h"
#include "rmkit/distill/call_cache.h"
#include "rmkit/distill/call_runner.h"
#include "rmkit/distill/local_model_id.h"
#include "rmkit/distill/parse.h"
#include "rmkit/distill/pipeline.h"
#include "rmkit/distill/prompts.h"
#include "rmkit/distill/stages.h"
#include "test_util.h"

namespace rmkit::distill {
namespace {

TEST(DistillParse, TwoScores) {
  auto s = parse_two_scores("8 6");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->first, 8);
  EXPECT_EQ(s->second, 6);
  s = parse_two_scores("7.5 3\nAssistant 1 was more detailed.");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->first, 7.5);
  EXPECT_EQ(s->second, 3);
  s = parse_two_scores("Scores: 9, 10");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->second, 10);
  EXPECT_FALSE(parse_two_scores("8"));                 // one number
  EXPECT_FALSE(parse_two_scores("no numbers here"));   // none
  EXPECT_FALSE(parse_two_scores("11 3"));              // out of range
  EXPECT_FALSE(parse_two_scores("0 5"));               // out of range (1-10 scale)
  EXPECT_FALSE(parse_two_scores("-3 5"));              // negative
  EXPECT_FALSE(parse_two_scores(""));
  // labels and scales are not scores
  s = parse_two_scores("8/10 and 6/10");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->first, 8);
  EXPECT_EQ(s->second, 6);
  s = parse_two_scores("Assistant 1: 8\nAssistant 2: 3");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->first, 8);
  EXPECT_EQ(s->second, 3);
  s = parse_two_scores("On a scale of 1 to 10: Answer #1 gets 7 out of 10, Response 2 gets 9.");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->first, 7);
  EXPECT_EQ(s->second, 9);
  EXPECT_FALSE(parse_two_scores("on a 1-10 scale"));  // a range, no score
  EXPECT_FALSE(parse_two_scores("Assistant 1 and Assistant 2 are both fine"));
  // a hyphen inside a word is not a minus sign, and "-3" after a space is negative
  EXPECT_FALSE(parse_two_scores("scores: -3 5"));
}

TEST(DistillParse, OneScore) {
  EXPECT_EQ(*parse_one_score("7"), 7);
  EXPECT_EQ(*parse_one_score("Score: 9.5 out of 10"), 9.5);
  EXPECT_EQ(*parse_one_score("On a scale of 1-10, the refined answer earns 8"), 8);
  EXPECT_EQ(*parse_one_score("Out of 10: 8"), 8);
  EXPECT_EQ(*parse_one_score("Response 2: 6/10"), 6);
  EXPECT_FALSE(parse_one_score("eleven"));
  EXPECT_FALSE(parse_one_score("0"));
  EXPECT_FALSE(parse_one_score("12"));
}

TEST(DistillParse, ModifiedResponseTags) {
  EXPECT_EQ(*extract_modified_response("<Start of Reasoning>x<End of Reasoning>\n<Start of Modified Response>\n"
                                       "Hello world.\n<End of Modified Response>"),
            "Hello world.");
  EXPECT_EQ(*extract_modified_response("<Start of Modified Response>a b</End of Modified Response> tail"), "a b");
  // the first start tag that has an end after it
  EXPECT_EQ(*extract_modified_response("<Start of Modified Response> <Start of Modified Response>x<End of Modified Response>"),
            "<Start of Modified Response>x");
  EXPECT_FALSE(extract_modified_response("<Start of Modified Response>cut off mid-way"));
  EXPECT_FALSE(extract_modified_response("Just a rewrite without tags."));
  EXPECT_FALSE(extract_modified_response("<End of Modified Response> before <Start of Modified Response>"));
}

TEST(DistillParse, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("kitten", "sitting"), 3.0 / 7.0);
  EXPECT_EQ(edit_distance("caf\xc3\xa9", "cafe"), 1u);  // one code point, two bytes
  EXPECT_DOUBLE_EQ(normalized_edit_distance("caf\xc3\xa9", "cafe"), 0.25);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("", ""), 0.0);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("", "abc"), 1.0);
  EXPECT_EQ(edit_distance("abc", "abc"), 0u);
  EXPECT_EQ(edit_distance("flaw", "lawn"), 2u);
}

TEST(DistillParse, QuestionText) {
  EXPECT_EQ(question_text({{"user", "Hi?"}}), "Hi?");
  EXPECT_EQ(question_text({{"system", "Be brief."}, {"user", "Hi?"}}), "System: Be brief.\n\nUser: Hi?");
}

DistillItem judged_item(size_t index, const std::string& a, const std::string& b) {
  DistillItem it;
  it.index = index;
  it.id = "item" + std::to_string(index);
  it.prompt = {{"user", "q"}};
  it.a = a;
  it.b = b;
  return it;
}

CallOutcome reply(const std::string& text) {
  CallOutcome o;
  o.reply = ChatReply{text, "stop", 1, 1, false};
  return o;
}

// The teacher's own answer is its own sample, never one of the candidates' requests, even when the
// teacher model is also the policy with the same sampling (then the same request would be answered,
// or served from the cache, with a candidate's text).
TEST(DistillStages, TeacherAnswerIsNotACandidateRequest) {
  DistillConfig cfg;
  cfg.policy_models = {"m"};
  cfg.teacher_model = "m";
  cfg.teacher_sampling = cfg.candidate_sampling;
  cfg.samples_per_policy = 64;
  std::vector<DistillItem> items = {judged_item(0, "a", "b"), judged_item(1, "c", "d")};
  std::vector<size_t> owner;
  const auto cands = candidate_requests(items, cfg, 1, &owner);
  ASSERT_EQ(cands[0].size(), 128u);
  const auto teacher = teacher_requests(items, cfg, &owner);
  ASSERT_EQ(teacher.size(), 2u);
  for (const auto& t : teacher) {
    EXPECT_EQ(t.model, "m");
    EXPECT_EQ(t.sampling.temperature, cfg.candidate_sampling.temperature);
    for (const auto& c : cands[0]) EXPECT_NE(request_key(t), request_key(c));
  }
}

TEST(DistillStages, BothOrdersAreAveragedPerResponse) {
  DistillConfig cfg;
  std::vector<DistillItem> items = {judged_item(0, "first", "second")};
  // order AB shows (first, second) -> 8 4; order BA shows (second, first) -> 6 7
  apply_judge(items, cfg, {reply("8 4"), reply("6 7")}, {0, 0}, false);
  ASSERT_TRUE(items[0].alive());
  EXPECT_DOUBLE_EQ(items[0].score_a, (8 + 7) / 2.0);
  EXPECT_DOUBLE_EQ(items[0].score_b, (4 + 6) / 2.0);
  EXPECT_EQ(items[0].chosen, "first");
  EXPECT_EQ(items[0].rejected, "second");
  EXPECT_DOUBLE_EQ(items[0].score_chosen, 7.5);
  EXPECT_DOUBLE_EQ(items[0].score_rejected, 5.0);
  EXPECT_EQ(items[0].judge_scores, (std::vector<double>{8, 4, 7, 6}));
}

TEST(DistillStages, JudgeFailuresAndTiesAreDroppedNotZero) {
  DistillConfig cfg;
  std::vector<DistillItem> items = {judged_item(0, "a", "b"), judged_item(1, "c", "d"), judged_item(2, "e", "f")};
  CallOutcome failed;
  failed.error = "HTTP 400: too long";
  failed.error_kind = "client_error";
  apply_judge(items, cfg, {reply("8 4"), reply("no idea"), reply("5 5"), reply("5 5"), failed, reply("1 2")},
              {0, 0, 1, 1, 2, 2}, false);
  EXPECT_EQ(items[0].dropped, "judge_unparsable");  // one order unparsable drops the pair
  EXPECT_EQ(items[1].dropped, "tie");
  EXPECT_EQ(items[2].dropped, "judge_call_failed");
  EXPECT_EQ(items[2].dropped_detail, "HTTP 400: too long");
  EXPECT_EQ(items[0].score_a, 0);  // never scored
}

TEST(DistillStages, RegradeKeepsTiesAliveForTheSecondRound) {
  DistillConfig cfg;
  cfg.regrade_ties = true;
  std::vector<DistillItem> items = {judged_item(0, "a", "b")};
  apply_judge(items, cfg, {reply("5 5"), reply("5 5")}, {0, 0}, false);
  ASSERT_TRUE(items[0].alive());
  PromptSet prompts = PromptSet::load();
  std::vector<size_t> owner;
  auto reqs = judge_requests(items, cfg, prompts, true, &owner);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(reqs[0].messages[0].content.find(prompts.tie_note.text()), std::string::npos);
  apply_judge(items, cfg, {reply("6 5"), reply("5 5")}, owner, true);
  ASSERT_TRUE(items[0].alive());
  EXPECT_DOUBLE_EQ(items[0].score_a, 5.5);
  EXPECT_TRUE(items[0].regraded);
}

TEST(DistillStages, RefineFiltersAndMarginFilter) {
  DistillConfig cfg;  // max_edit_ratio 0.5, min_margin 1
  std::vector<DistillItem> items(4);
  for (size_t i = 0; i < items.size(); ++i) {
    items[i] = judged_item(i, "x", "y");
    items[i].rejected = "The cat sat on the mat.";
    items[i].score_rejected = 4;
  }
  const std::string tag = "<Start of Modified Response>", end = "<End of Modified Response>";
  apply_refine(items, cfg,
               {reply(tag + "The cat sat on the red mat." + end), reply("no tags at all"),
                reply(tag + "Completely different words here, nothing alike at all!" + end),
                reply(tag + "The cat sat on the mat." + end)},
               {0, 1, 2, 3});
  // an echo of y_l that differs only in surrounding whitespace is unchanged too
  std::vector<DistillItem> echo = {items[3]};
  echo[0].dropped.clear();
  echo[0].rejected = "Hello.\n";
  apply_refine(echo, cfg, {reply(tag + "\nHello.\n" + end)}, {0});
  EXPECT_EQ(echo[0].dropped, "refine_unchanged");
  ASSERT_TRUE(items[0].alive());
  EXPECT_DOUBLE_EQ(items[0].edit_ratio, 4.0 / 27.0);  // "red " inserted into 23 chars -> 27
  EXPECT_EQ(items[1].dropped, "refine_no_tags");
  EXPECT_EQ(items[2].dropped, "edit_ratio_above_max");
  EXPECT_EQ(items[3].dropped, "refine_unchanged");
  // margin must exceed min_margin: 5 - 4 = 1 is not enough, 5.5 - 4 is
  items[0].score_refined = 5;
  std::vector<DistillItem> two = {items[0], items[0]};
  two[1].score_refined = 5.5;
  apply_filter(two, cfg);
  EXPECT_EQ(two[0].dropped, "margin_below_min");
  EXPECT_TRUE(two[1].alive());
}

TEST(DistillStages, RescoreParseFailureDropsUnlessFallback) {
  DistillConfig cfg;
  std::vector<DistillItem> items = {judged_item(0, "a", "b"), judged_item(1, "c", "d")};
  apply_rescore(items, cfg, {reply("9"), reply("I think it is great")}, {0, 1});
  EXPECT_EQ(items[0].score_refined, 9);
  EXPECT_EQ(items[1].dropped, "rescore_unparsable");
  cfg.calibration_fallback = 8.0;
  std::vector<DistillItem> again = {judged_item(0, "c", "d")};
  apply_rescore(again, cfg, {reply("I think it is great")}, {0});
  EXPECT_TRUE(again[0].alive());
  EXPECT_EQ(again[0].score_refined, 8.0);
  EXPECT_TRUE(again[0].calibration_fallback_used);
}

TEST(DistillPrompts, PlaceholdersAreCheckedAtLoad) {
  PromptTemplate t("Q: {question}\n{{literal}} {not a placeholder} {answer_a} {answer_b}", "x.txt",
                   {"question", "answer_a", "answer_b"});
  EXPECT_EQ(t.render({{"question", "why {answer_a}?"}, {"answer_a", "A"}, {"answer_b", "B"}}),
            "Q: why {answer_a}?\n{literal} {not a placeholder} A B");
  try {
    PromptTemplate bad("line one\nline {answr_a} two {answer_b} {question}", "judge.txt", {"question", "answer_a", "answer_b"});
    FAIL() << "unknown placeholder accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("judge.txt:2: unknown placeholder {answr_a}"), std::string::npos) << e.what();
  }
  EXPECT_THROW(PromptTemplate("only {question}", "judge.txt", {"question", "answer_a", "answer_b"}), FormatError);
}

TEST(DistillPrompts, DirectoryReplacesBuiltinsAndRejectsStrayFiles) {
  const std::string dir = testing::temp_dir("distill_prompts");
  PromptSet::write_defaults(dir);
  PromptSet d = PromptSet::load(dir);
  EXPECT_EQ(d.judge.text(), default_prompt("judge"));
  EXPECT_EQ(d.digest(), PromptSet::load().digest());
  write_file_atomic(join_path(dir, "rescore.txt"), "It scored {score}. Yours? {bogus}");
  EXPECT_THROW(PromptSet::load(dir), FormatError);
  write_file_atomic(join_path(dir, "rescore.txt"), "It scored {score}. Yours?");
  EXPECT_NE(PromptSet::load(dir).digest(), PromptSet::load().digest());
  write_file_atomic(join_path(dir, "judg.txt"), "typo");
  EXPECT_THROW(PromptSet::load(dir), UsageError);
}

ChatRequest base_request() {
  ChatRequest r;
  r.model = "teacher";
  r.messages = {{"user", "hello"}};
  r.sampling = {0.7, 0.8, 20, 100};
  r.sample_index = 0;
  r.seed = 5;
  return r;
}

TEST(DistillCache, KeysChangeWithEveryParameter) {
  const std::string k = request_key(base_request());
  EXPECT_EQ(request_key(base_request()), k);
  std::vector<std::function<void(ChatRequest&)>> changes = {
      [](ChatRequest& r) { r.model = "other"; },
      [](ChatRequest& r) { r.messages[0].content = "hello!"; },
      [](ChatRequest& r) { r.messages[0].role = "system"; },
      [](ChatRequest& r) { r.messages.push_back({"assistant", ""}); },
      [](ChatRequest& r) { r.sampling.temperature = 0.8; },
      [](ChatRequest& r) { r.sampling.top_p = 0.9; },
      [](ChatRequest& r) { r.sampling.top_k = 0; },
      [](ChatRequest& r) { r.sampling.max_tokens = 101; },
      [](ChatRequest& r) { r.seed = 6; },
      [](ChatRequest& r) { r.sample_index = 1; },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    ChatRequest r = base_request();
    changes[i](r);
    EXPECT_NE(request_key(r), k) << "change " << i;
  }
  // greedy calls ignore the sample index
  ChatRequest g = base_request();
  g.sampling.temperature = 0;
  g.seed.reset();
  ChatRequest g2 = g;
  g2.sample_index = 3;
  EXPECT_EQ(request_key(g), request_key(g2));
}

// A local model's cache identity follows its content: the same files under another name share the
// digest, one changed byte (or another tokenizer or chat template) does not.
TEST(DistillCache, LocalModelIdFollowsTheFiles) {
  const std::string dir = testing::temp_dir("distill_model_id");
  const std::string a = join_path(dir, "a/ckpt"), b = join_path(dir, "b/ckpt");
  for (const auto& d : {a, b}) {
    make_dirs(join_path(d, "sub"));
    write_file_atomic(join_path(d, "model.safetensors"), "weights-1");
    write_file_atomic(join_path(d, "sub/tokenizer.json"), "{}");
  }
  const std::string ida = local_model_id(a, "", "", "auto");
  ASSERT_EQ(ida.rfind("ckpt@", 0), 0u) << ida;
  EXPECT_EQ(ida.size(), 5u + 16u);
  EXPECT_EQ(local_model_id(b + "/", "", "", "auto"), ida);  // same content, trailing slash: same id
  EXPECT_EQ(local_model_id(a, "teacher", "", "auto"), "teacher" + ida.substr(4));
  EXPECT_NE(local_model_id(a, "", "", "chatml"), ida);
  const std::string tok = join_path(dir, "tok.model");
  write_file_atomic(tok, "t");
  EXPECT_NE(local_model_id(a, "", tok, "auto"), ida);
  write_file_atomic(join_path(b, "model.safetensors"), "weights-2");
  EXPECT_NE(local_model_id(b, "", "", "auto"), ida);
  write_file_atomic(join_path(b, "model.safetensors"), "weights-1");
  write_file_atomic(join_path(b, "sub/tokenizer.json"), "{\"x\": 1}");  // subdirectories are not the model
  write_file_atomic(join_path(b, ".rmkit.lock"), "123");                 // nor hidden files
  EXPECT_EQ(local_model_id(b, "", "", "auto"), ida);
  write_file_atomic(join_path(b, "extra.bin"), "");  // another file, even empty
  EXPECT_NE(local_model_id(b, "", "", "auto"), ida);
  const std::string single = join_path(dir, "m.bin");
  write_file_atomic(single, "weights-1");
  EXPECT_EQ(local_model_id(single, "", "", "auto").rfind("m.bin@", 0), 0u);
  EXPECT_THROW(local_model_id(join_path(dir, "missing.bin"), "", "", "auto"), IoError);
}

TEST(DistillCache, RepliesSurviveReopen) {
  const std::string path = join_path(testing::temp_dir("distill_cache"), "calls.sqlite");
  const ChatRequest r = base_request();
  {
    CallCache c(path);
    EXPECT_FALSE(c.get(request_key(r)));
    c.put(request_key(r), "judge", r, ChatReply{"8 6 \xe2\x9c\x93", "stop", 12, 3, false});
    c.put(request_key(r), "judge", r, ChatReply{"other", "stop", 1, 1, false});  // first reply kept
  }
  CallCache c(path);
  auto got = c.get(request_key(r));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text, "8 6 \xe2\x9c\x93");
  EXPECT_EQ(got->prompt_tokens, 12);
  EXPECT_EQ(got->completion_tokens, 3);
  EXPECT_TRUE(got->cached);
  EXPECT_EQ(c.size(), 1);
}

// Answers "re: <content>", counts calls, fails as told.
struct FakeClient : ChatClient {
  std::atomic<int> calls{0};
  int fail_first = 0;  // retryable server errors before succeeding
  ChatReply complete(const ChatRequest& r) override {
    const int n = calls++;
    if (n < fail_first) throw CallError(CallError::Kind::Server, "HTTP 503: busy", 503);
    if (r.messages[0].content == "bad") throw CallError(CallError::Kind::Client, "HTTP 400: bad input", 400);
    if (r.messages[0].content == "boom") throw IoError("disk full");  // not a call failure
    return ChatReply{"re: " + r.messages[0].content, "stop", 10, 5, false};
  }
  std::string describe() const override { return "fake"; }
};

std::vector<ChatRequest> requests(const std::vector<std::string>& texts) {
  std::vector<ChatRequest> out;
  for (const auto& t : texts) {
    ChatRequest r = base_request();
    r.messages[0].content = t;
    out.push_back(r);
  }
  return out;
}

// An exception that is not a call failure (a cache write, a local engine) stops the run with that
// error once the workers are joined (it used to escape a worker thread: std::terminate); the replies
// received before it stay cached.
TEST(DistillRunner, OtherErrorsInAWorkerStopTheRunCleanly) {
  const std::string dir = testing::temp_dir("distill_runner_other");
  CallCache cache(join_path(dir, "calls.sqlite"));
  RunnerConfig rc;
  rc.concurrency = 1;  // "a" is answered before "boom"
  rc.progress = false;
  CallRunner runner(cache, rc);
  FakeClient client;
  try {
    runner.run("s", client, requests({"a", "boom", "c"}));
    FAIL() << "expected the IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("disk full"), std::string::npos);
  }
  EXPECT_EQ(cache.size(), 1);  // "a"
  EXPECT_EQ(client.calls.load(), 2);  // "c" never sent
}

// A retryable failure that arrives after a budget stopped the run is not retried and not fatal: the
// run ends with BudgetReached (resumable), not with "after N retries".
TEST(DistillRunner, RetryCutShortByABudgetStopIsNotFatal) {
  const std::string dir = testing::temp_dir("distill_budget_retry");
  CallCache cache(join_path(dir, "calls.sqlite"));
  RunnerConfig rc;
  rc.concurrency = 2;
  rc.max_calls = 1;  // the second worker stops the run while the first call is still out
  rc.max_retries = 5;
  rc.progress = false;
  struct SlowFail : FakeClient {
    ChatReply complete(const ChatRequest& r) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ++calls;
      throw CallError(CallError::Kind::Server, "HTTP 503: busy", 503);
    }
  } client;
  CallRunner runner(cache, rc);
  EXPECT_THROW(runner.run("s", client, requests({"a", "b"})), BudgetReached);
  EXPECT_EQ(client.calls.load(), 1);  // no retry once stopped
  EXPECT_EQ(cache.size(), 0);
}

TEST(DistillRunner, DedupCacheRetriesAndClientErrors) {
  const std::string dir = testing::temp_dir("distill_runner");
  CallCache cache(join_path(dir, "calls.sqlite"));
  RunnerConfig rc;
  rc.concurrency = 3;
  rc.backoff_base_s = 0.001;
  rc.progress = false;
  CallRunner runner(cache, rc);
  FakeClient client;
  client.fail_first = 2;
  auto out = runner.run("s", client, requests({"a", "b", "a", "bad", "c"}));
  EXPECT_EQ(client.calls.load(), 4 + 2);  // a, b, bad, c once each + 2 failed attempts
  ASSERT_TRUE(out[0].reply && out[2].reply);
  EXPECT_EQ(out[2].reply->text, "re: a");
  EXPECT_FALSE(out[3].reply);
  EXPECT_EQ(out[3].error_kind, "client_error");
  EXPECT_NE(out[3].error.find("bad input"), std::string::npos);
  EXPECT_EQ(runner.stage_totals().retries, 2);
  EXPECT_EQ(runner.stage_totals().sent, 3);
  // a second run is answered from the cache, except the failed call
  auto again = runner.run("s", client, requests({"a", "b", "a", "bad", "c"}));
  EXPECT_EQ(client.calls.load(), 7);
  EXPECT_EQ(runner.stage_totals().hits, 3);
  EXPECT_EQ(again[4].reply->text, "re: c");
  EXPECT_TRUE(again[4].reply->cached);
}

TEST(DistillRunner, BudgetStopsAfterCommittingAndUnreachableIsFatal) {
  const std::string dir = testing::temp_dir("distill_budget");
  CallCache cache(join_path(dir, "calls.sqlite"));
  RunnerConfig rc;
  rc.concurrency = 1;
  rc.max_calls = 2;
  rc.progress = false;
  FakeClient client;
  {
    CallRunner runner(cache, rc);
    EXPECT_THROW(runner.run("s", client, requests({"a", "b", "c", "d"})), BudgetReached);
  }
  EXPECT_EQ(cache.size(), 2);
  rc.max_calls = 0;
  rc.max_retries = 2;
  rc.backoff_base_s = 0.001;
  CallRunner runner(cache, rc);
  client.fail_first = 1000;
  client.calls = 0;
  EXPECT_THROW(runner.run("s", client, requests({"c"})), CallError);
  EXPECT_EQ(client.calls.load(), 3);  // one try + 2 retries
}

TEST(DistillSettings, ChangedSettingsAreNamed) {
  DistillConfig a;
  PromptSet p = PromptSet::load();
  DistillConfig b = a;
  b.min_margin = 2;
  b.orders = 1;
  auto diff = changed_settings(stage_settings(a, p, "x"), stage_settings(b, p, "x"));
  ASSERT_EQ(diff.size(), 2u);
  EXPECT_EQ(diff[0], "build.min_margin: 1.0 -> 2.0");
  EXPECT_EQ(diff[1], "judge.orders: 2 -> 1");
  EXPECT_TRUE(changed_settings(stage_settings(a, p, "x"), stage_settings(a, p, "x")).empty());
}

}  // namespace
}  // namespace rmkit::distill
