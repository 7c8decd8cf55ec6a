// /v1/score and /v1/compare: rewards equal `rmkit score`'s, whatever the batching (alone, in one
// request, mixed with other clients' requests); a shared prompt runs once.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <thread>

#include "rmkit/core/file_io.h"
#include "rmkit/data/encode.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"
#include "serve_fixture.h"

namespace rmkit::serve::testing {
namespace {

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> v;
  for_each_line(path, [&](const std::string& line, size_t) {
    if (!line.empty()) v.push_back(json::parse(line));
    return true;
  });
  return v;
}

// The pairs as a normalized-schema .jsonl file.
std::string write_pairs(const std::vector<data::PrefPair>& pairs, const std::string& dir) {
  std::string out;
  for (const auto& p : pairs) {
    json msgs = json::array();
    for (const auto& m : p.prompt) msgs.push_back({{"role", m.role}, {"content", m.content}});
    out += json{{"id", p.id}, {"prompt", msgs}, {"chosen", p.chosen}, {"rejected", p.rejected}}.dump() + "\n";
  }
  std::string path = join_path(dir, "pairs.jsonl");
  write_file_atomic(path, out);
  return path;
}

TEST(ServeScore, EqualsRmkitScoreAloneBatchedAndConcurrent) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  auto pairs = sample_pairs(6);
  ASSERT_EQ(pairs.size(), 6u);
  const std::string dir = rmkit::testing::temp_dir("serve_score");
  const std::string data = write_pairs(pairs, dir), scored = join_path(dir, "scored.jsonl");
  auto r = rmkit::testing::run_rmkit("score --model " + rmkit::testing::shell_quote(rm_dir()) + " --data " + data +
                                     " --output " + scored + " --max-length 512 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = read_jsonl(scored);
  ASSERT_EQ(rows.size(), pairs.size());
  std::vector<double> expected;  // chosen0, rejected0, chosen1, ...
  json inputs = json::array();
  for (size_t i = 0; i < pairs.size(); ++i) {
    expected.push_back(rows[i]["reward_chosen"].get<double>());
    expected.push_back(rows[i]["reward_rejected"].get<double>());
    inputs.push_back(score_input(pairs[i], true));
    inputs.push_back(score_input(pairs[i], false));
  }

  auto cfg = base_config();
  cfg.batcher.max_wait_ms = 20;
  RunningServer srv(cfg);
  auto cli = srv.client();
  // all inputs in one request
  Reply all = post(cli, "/v1/score", {{"inputs", inputs}});
  ASSERT_EQ(all.status, 200) << all.raw;
  ASSERT_EQ(all.body["data"].size(), expected.size());
  int64_t usage = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& d = all.body["data"][i];
    EXPECT_EQ(d["index"], i);
    EXPECT_NEAR(d["reward"].get<double>(), expected[i], 1e-5) << "input " << i;
    EXPECT_FALSE(d["truncated"].get<bool>());  // sample_pairs() keeps pairs that fit 512 tokens
    EXPECT_GT(d["tokens"].get<int64_t>(), 1);
    usage += d["tokens"].get<int64_t>();
  }
  EXPECT_EQ(all.body["usage"]["prompt_tokens"], usage);
  EXPECT_EQ(all.body["model"], "rm");
  // each input alone
  for (size_t i = 0; i < expected.size(); ++i) {
    Reply one = post(cli, "/v1/score", {{"model", "rm"}, {"inputs", {inputs[i]}}});
    ASSERT_EQ(one.status, 200) << one.raw;
    EXPECT_NEAR(one.body["data"][0]["reward"].get<double>(), expected[i], 1e-5);
  }
  // 8 concurrent clients, each sending random subsets: every reward still equals the offline one
  const int64_t batches_before = srv.server->metrics().value("rmkit_compute_seconds", {{"model", "rm"}});
  std::vector<std::thread> th;
  std::vector<std::string> failures(8);
  int requests = 0;
  for (int t = 0; t < 8; ++t, requests += 4) {
    th.emplace_back([&, t] {
      std::mt19937 rng(t);
      auto c = srv.client();
      for (int k = 0; k < 4; ++k) {
        std::vector<size_t> pick;
        for (size_t i = 0; i < expected.size(); ++i)
          if (rng() % 2) pick.push_back(i);
        if (pick.empty()) pick.push_back(static_cast<size_t>(t) % expected.size());
        json in = json::array();
        for (size_t i : pick) in.push_back(inputs[i]);
        Reply rep = post(c, "/v1/score", {{"inputs", in}});
        if (rep.status != 200) {
          failures[t] = "status " + std::to_string(rep.status) + ": " + rep.raw;
          return;
        }
        for (size_t j = 0; j < pick.size(); ++j) {
          double got = rep.body["data"][j]["reward"].get<double>();
          if (std::abs(got - expected[pick[j]]) > 1e-5)
            failures[t] = "input " + std::to_string(pick[j]) + ": " + std::to_string(got) + " vs " +
                          std::to_string(expected[pick[j]]);
        }
      }
    });
  }
  for (auto& t : th) t.join();
  for (const auto& f : failures) EXPECT_EQ(f, "");
  const int64_t batches = srv.server->metrics().value("rmkit_compute_seconds", {{"model", "rm"}}) - batches_before;
  EXPECT_LT(batches, requests) << "requests of different clients were never batched together";
}

TEST(ServeScore, SharedPromptRunsOnceAndNormalizeUsesCalibration) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  auto pairs = sample_pairs(1);
  RunningServer srv(base_config());
  auto cli = srv.client();
  const auto& p = pairs[0];
  json prompt = score_input(p, true)["prompt"];
  std::vector<std::string> replies = {p.chosen, p.rejected, "", p.chosen + " Indeed."};
  // singles, one request each: the reference values and the tokens of each full sequence
  std::vector<double> alone;
  std::vector<int64_t> tokens;
  for (const auto& rep : replies) {
    Reply one = post(cli, "/v1/score", {{"inputs", {{{"prompt", prompt}, {"response", rep}}}}});
    ASSERT_EQ(one.status, 200) << one.raw;
    alone.push_back(one.body["data"][0]["reward"].get<double>());
    tokens.push_back(one.body["data"][0]["tokens"].get<int64_t>());
  }
  const double computed_before = srv.server->metrics().value("rmkit_computed_tokens_total", {{"model", "rm"}});
  Reply cmp = post(cli, "/v1/compare", {{"prompt", prompt}, {"responses", replies}});
  ASSERT_EQ(cmp.status, 200) << cmp.raw;
  const double computed = srv.server->metrics().value("rmkit_computed_tokens_total", {{"model", "rm"}}) - computed_before;
  // The prompt runs once: computed tokens = |prompt| + sum |response_k| (data/encode.h's split).
  auto tok = text::load_tokenizer(rm_dir());
  auto tmpl = text::ChatTemplate::named("plain");
  std::vector<int32_t> prompt_ids;
  int64_t expect = 0;
  for (size_t k = 0; k < replies.size(); ++k) {
    auto e = data::encode_single(p.prompt, replies[k], *tok, tmpl, 512);
    if (k == 0) prompt_ids = e.prompt_ids, expect += static_cast<int64_t>(e.prompt_ids.size());
    ASSERT_EQ(e.prompt_ids, prompt_ids) << "reply " << k << " tokenises the prompt differently";
    expect += static_cast<int64_t>(e.response_ids.size());
    EXPECT_EQ(tokens[k], static_cast<int64_t>(e.length()));
  }
  EXPECT_EQ(static_cast<int64_t>(computed), expect);
  const auto& rw = cmp.body["rewards"];
  ASSERT_EQ(rw.size(), replies.size());
  for (size_t i = 0; i < replies.size(); ++i) EXPECT_NEAR(rw[i].get<double>(), alone[i], 1e-5);
  // ranking: indices by reward, descending
  std::vector<size_t> order = cmp.body["ranking"].get<std::vector<size_t>>();
  ASSERT_EQ(order.size(), replies.size());
  for (size_t i = 1; i < order.size(); ++i) EXPECT_GE(alone[order[i - 1]], alone[order[i]]);
  for (size_t i = 0; i < replies.size(); ++i)
    for (size_t j = 0; j < replies.size(); ++j)
      EXPECT_NEAR(cmp.body["probabilities"][i][j].get<double>(), 1.0 / (1.0 + std::exp(-(alone[i] - alone[j]))), 1e-6);
  // normalize: (r - 0.5) / 2.0 from the fixture's rmkit.json; raw false: sigmoid
  Reply norm = post(cli, "/v1/score", {{"inputs", {score_input(p, true)}}, {"normalize", true}});
  ASSERT_EQ(norm.status, 200) << norm.raw;
  EXPECT_NEAR(norm.body["data"][0]["reward"].get<double>(), (alone[0] - 0.5) / 2.0, 1e-6);
  Reply sig = post(cli, "/v1/score", {{"inputs", {score_input(p, true)}}, {"raw", false}});
  EXPECT_NEAR(sig.body["data"][0]["reward"].get<double>(), 1.0 / (1.0 + std::exp(-alone[0])), 1e-6);
  // messages form == prompt/response form
  json msgs = prompt;
  msgs.push_back({{"role", "assistant"}, {"content", p.chosen}});
  Reply viamsg = post(cli, "/v1/score", {{"inputs", {{{"messages", msgs}}}}});
  ASSERT_EQ(viamsg.status, 200) << viamsg.raw;
  EXPECT_NEAR(viamsg.body["data"][0]["reward"].get<double>(), alone[0], 1e-6);
}

TEST(ServeScore, TruncationReportedOrRejected) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "Once upon a time there was a little dog. ";
  json in = {{{"prompt", "Tell me a story."}, {"response", long_text}}};
  {
    RunningServer srv(base_config());
    Reply r = post(srv.client(), "/v1/score", {{"inputs", in}});
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_TRUE(r.body["data"][0]["truncated"].get<bool>());
    EXPECT_EQ(r.body["data"][0]["tokens"], 512);
  }
  auto cfg = base_config();
  cfg.slot.truncate = false;
  RunningServer srv(cfg);
  Reply r = post(srv.client(), "/v1/score", {{"inputs", in}});
  EXPECT_EQ(r.status, 422) << r.raw;
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("--max-length"), std::string::npos) << r.raw;
  EXPECT_EQ(r.body["error"]["param"], "inputs[0]");
}

}  // namespace
}  // namespace rmkit::serve::testing
