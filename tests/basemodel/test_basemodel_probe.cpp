// rmkit basemodel probe on two tiny llama2.c-format models: the pretrained stories260K and a
// randomly initialised stories-config checkpoint (written here, converted with `rmkit convert`).
// On pairs whose chosen reply is a natural story sentence and whose rejected reply is the same words
// reversed, the pretrained LM's zero-shot implicit preference accuracy is high and the random one's
// is not, so the zero-shot column ranks them; the probe trainings write a model table with ranks.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rmkit/basemodel/table.h"
#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace rmkit {
namespace {

using nlohmann::json;
using testing::asset;
using testing::run_rmkit;
using testing::shell_quote;

const std::vector<std::string> kSentences = {
    "Once upon a time, there was a little girl named Lily.", "She loved to play outside in the park.",
    "One day, she saw a big, red ball.", "Tom had a little dog named Max.", "The sun was shining and the birds were singing.",
    "Lily's mom said it was time to go home.", "The little boy was very happy.", "They played together all day long.",
    "The cat sat on the mat and looked at the bird.", "Sue wanted to help her friend.", "The tree was big and green.",
    "He ran to his mom and gave her a hug.", "They went to the park to play.", "The bird flew high in the sky.",
    "She was sad because she lost her toy.", "Ben liked to eat apples.", "The dog barked at the cat.",
    "Mom made a yummy cake for the party.", "The girl smiled and said thank you.", "They all lived happily ever after.",
    "The boy saw a big truck on the road.", "Anna found a shiny stone in the garden.", "The fish swam in the blue water.",
    "Sam and his dad went for a walk."};

std::string reversed_words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  std::string x;
  while (in >> x) w.push_back(x);
  std::string out;
  for (size_t i = w.size(); i-- > 0;) out += w[i] + (i ? " " : "");
  return out;
}

std::string pairs_file(const std::string& dir, const std::string& name, size_t from, size_t to) {
  std::string rows;
  for (size_t i = from; i < to; ++i)
    rows += json({{"prompt", json::array({{{"role", "user"}, {"content", "Tell me a story."}}})},
                  {"chosen", kSentences[i]},
                  {"rejected", reversed_words(kSentences[i])},
                  {"category", "story"}})
                .dump() +
            "\n";
  const std::string p = join_path(dir, name);
  write_file_atomic(p, rows);
  return p;
}

// stories260K's header with N(0, 0.05) weights (RMSNorm weights 1), same layout; RoPE tables kept.
std::string random_llama2c(const std::string& dir) {
  std::string bin = read_file(asset("models/stories260K/stories260K.bin"));
  int32_t h[7];
  std::memcpy(h, bin.data(), sizeof h);
  const int64_t dim = h[0], hidden = h[1], L = h[2], heads = h[3], kv = h[4], vocab = h[5] < 0 ? -h[5] : h[5];
  const int64_t kv_dim = dim / heads * kv;
  const std::vector<std::pair<int64_t, bool>> blocks = {  // (floats, is_norm)
      {vocab * dim, false}, {L * dim, true},         {L * dim * dim, false},    {L * kv_dim * dim, false},
      {L * kv_dim * dim, false}, {L * dim * dim, false}, {L * dim, true},    {L * hidden * dim, false},
      {L * dim * hidden, false}, {L * hidden * dim, false}, {dim, true}};
  std::mt19937 gen(1234);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  size_t off = sizeof h;
  for (const auto& [n, norm] : blocks)
    for (int64_t i = 0; i < n; ++i, off += 4) {
      const float v = norm ? 1.0f : nd(gen);
      std::memcpy(&bin[off], &v, 4);
    }
  EXPECT_LE(off, bin.size());
  const std::string p = join_path(dir, "random.bin");
  write_file_atomic(p, bin);
  return p;
}

TEST(BasemodelProbe, RanksPretrainedAboveRandomOnTwoTinyModels) {
  const std::string model = asset("models/stories260K/stories260K.bin"), tok = asset("models/stories260K/tok512.model");
  RMKIT_REQUIRE_ASSET(model);
  const std::string dir = testing::temp_dir("bm_probe");
  const std::string train = pairs_file(dir, "train.jsonl", 0, 12), val = pairs_file(dir, "val.jsonl", 12, 24);
  const std::string rand_hf = join_path(dir, "random_hf");
  auto conv = run_rmkit("convert --input " + shell_quote(random_llama2c(dir)) + " --tokenizer " + shell_quote(tok) +
                        " --output " + shell_quote(rand_hf));
  ASSERT_EQ(conv.exit_code, 0) << conv.err;
  const std::string out = join_path(dir, "out");
  const std::string table = join_path(dir, "models.csv");
  write_file_atomic(table, "model,params_m\nstories,0.26\nother,1.0\n");
  auto r = run_rmkit("basemodel probe --table " + shell_quote(table) + " --candidate random=" + shell_quote(rand_hf) +
                     " --candidate stories=" +
                     shell_quote(model + "," + tok) + " --data " + shell_quote(train) + " --val " + shell_quote(val) +
                     " --steps 6 --lr 1e-3,5e-3 --batch-size 4 --max-length 64 --threads 1 --output " + shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(read_file(join_path(out, "probe.json")));
  ASSERT_EQ(j["candidates"].size(), 2u);
  std::map<std::string, json> by;
  for (const auto& c : j["candidates"]) by[c["model"].get<std::string>()] = c;
  EXPECT_EQ(by["stories"]["zero_shot_pairs"], 12);
  EXPECT_GE(by["stories"]["zero_shot_accuracy"].get<double>(), 0.75);
  EXPECT_GT(by["stories"]["zero_shot_accuracy"].get<double>(), by["random"]["zero_shot_accuracy"].get<double>());
  for (const auto& c : j["candidates"]) {
    ASSERT_EQ(c["sweep"].size(), 2u);
    for (const auto& s : c["sweep"]) {
      EXPECT_GE(s["val_accuracy"].get<double>(), 0.0);
      EXPECT_LE(s["val_accuracy"].get<double>(), 1.0);
      EXPECT_LE(s["val_accuracy"].get<double>(), c["probe_accuracy"].get<double>());  // the best of the sweep
    }
  }
  // probe.csv is a model table: rank 1 has the highest probe accuracy
  auto t = basemodel::read_table(join_path(out, "probe.csv"));
  ASSERT_EQ(t.rows(), 2u);
  const size_t acc = t.index("probe_accuracy"), rank = t.index("probe_rank");
  EXPECT_EQ(*t.number(0, rank), 1);
  // the pretrained model ranks first: its probe accuracy is at least the random one's (measured:
  // 1.0 vs 0.92) and a tie goes to the higher zero-shot accuracy
  EXPECT_EQ(t.cells[0][0], "stories");
  EXPECT_GE(*t.number(0, acc), *t.number(1, acc));
  EXPECT_TRUE(t.find("zero_shot_accuracy").has_value());
  // --table: the probe columns joined into the given model table
  auto merged = basemodel::read_table(join_path(out, "table.csv"));
  ASSERT_EQ(merged.rows(), 3u);  // stories, other, random
  EXPECT_EQ(merged.cells[0][0], "stories");
  EXPECT_EQ(*merged.number(0, merged.index("params_m")), 0.26);
  EXPECT_NEAR(*merged.number(0, merged.index("zero_shot_accuracy")), by["stories"]["zero_shot_accuracy"].get<double>(), 1e-7);
  EXPECT_FALSE(merged.number(1, merged.index("probe_accuracy")).has_value());  // "other" was not probed
}

}  // namespace
}  // namespace rmkit
