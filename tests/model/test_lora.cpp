// LoRA (model/lora.h) on stories260K (llama, GQA) and a tiny GPT-2 (Conv1D, fused qkv):
// zero-B adapters leave every forward path bit-identical (padded, packed, KV cache, the serve
// engine's per-sequence caches); merge equals the adapter forward; only adapters get gradients
// (also through activation checkpointing with dropout); PEFT save/load round trip and name
// layout; the --lora string's one-line errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/lora.h"
#include "rmkit/model/registry.h"
#include "rmkit/model/safetensors.h"
#include "rmkit/train/optim.h"
#include "test_util.h"

namespace rmkit::model {
namespace {

using rmkit::testing::asset;

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

CausalLMPtr stories() {
  const std::string path = asset("models/stories260K/stories260K.bin");
  if (!path_exists(path)) return nullptr;
  return load_pretrained(path).model;
}

CausalLMPtr tiny_gpt2() {
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", 40},
                      {"n_embd", 24}, {"n_layer", 2}, {"n_head", 3}, {"n_positions", 64},
                      {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"}};
  torch::manual_seed(11);
  auto m = create_model(ModelConfig::from_json(j, "tiny-gpt2"));
  m->eval();
  return m;
}

// Every projection of the family: q, k, v, o, gate, up, down (GPT-2 has no gate).
LoraConfig all_targets(const CausalLMImpl& m, int64_t r = 4, double alpha = 8.0, double dropout = 0.0) {
  LoraConfig c;
  c.r = r;
  c.alpha = alpha;
  c.dropout = dropout;
  c.targets = {"q", "k", "v", "o", "up", "down"};
  if (m.config().family != "gpt2") c.targets.push_back("gate");
  return c;
}

void randomize_b(CausalLMImpl& m, double std = 0.05, uint64_t seed = 5) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto& [name, p] : lora_parameters(m))
    if (name.find("lora_B") != std::string::npos) p.normal_(0.0, std);
}

// Two prompts of different lengths, right padded: ids/mask [2, 9].
ForwardInput padded_input(int64_t vocab) {
  torch::manual_seed(2);
  ForwardInput in;
  in.input_ids = torch::randint(3, vocab, {2, 9}, torch::kLong);
  in.attention_mask = torch::ones({2, 9}, torch::kLong);
  in.attention_mask.index_put_({1, torch::indexing::Slice(6)}, 0);
  return in;
}

// Every forward path of `m` on fixed inputs: padded logits, a packed row, KV-cache decode steps
// and the serve engine's per-sequence caches (packed + seq_kv).
std::vector<torch::Tensor> all_paths(CausalLMImpl& m) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> out;
  const int64_t V = m.config().vocab_size;
  out.push_back(m.forward(padded_input(V)));  // [2, 9, V]
  torch::manual_seed(4);
  auto a = torch::randint(3, V, {6}, torch::kLong), b = torch::randint(3, V, {4}, torch::kLong);
  PackedLayout pl;
  pl.segments = {{0, 6, 0, 0}, {6, 4, 0, 0}};
  pl.positions = torch::cat({torch::arange(6), torch::arange(4)});
  ForwardInput pin;
  pin.input_ids = torch::cat({a, b}).unsqueeze(0);
  pin.packed = &pl;
  out.push_back(m.forward(pin));  // [1, 10, V]
  KVCache cache;                  // prefill 6 tokens, then decode b one token at a time
  ForwardInput kin;
  kin.input_ids = a.unsqueeze(0);
  kin.cache = &cache;
  out.push_back(m.forward(kin));
  for (int64_t t = 0; t < 4; ++t) {
    kin.input_ids = b.slice(0, t, t + 1).unsqueeze(0);
    out.push_back(m.forward(kin));  // [1, 1, V]
  }
  SeqKV s1, s2;  // two sequences in one packed row with their own caches: prefill, then one decode step
  s1.reserve(8, m.config(), m.embedding_weight().scalar_type());
  s2.reserve(8, m.config(), m.embedding_weight().scalar_type());
  std::vector<SeqKV*> kvs = {&s1, &s2};
  PackedLayout pre;
  pre.segments = {{0, 6, 0, 0}, {6, 4, 0, 0}};
  pre.positions = pl.positions;
  ForwardInput kv_in;
  kv_in.input_ids = pin.input_ids;
  kv_in.packed = &pre;
  kv_in.seq_kv = &kvs;
  out.push_back(m.forward(kv_in));
  s1.length += 6;
  s2.length += 4;
  PackedLayout step;
  step.segments = {{0, 1, 0, 0}, {1, 1, 0, 0}};
  step.positions = torch::tensor({6, 4}, torch::kLong);
  kv_in.input_ids = torch::tensor({{5, 7}}, torch::kLong);
  kv_in.packed = &step;
  out.push_back(m.forward(kv_in));  // [1, 2, V]
  return out;
}

TEST(Lora, ZeroAdaptersLeaveEveryForwardPathUnchanged) {
  for (auto m : {stories(), tiny_gpt2()}) {
    ASSERT_TRUE(m) << "missing stories260K (set RMKIT_ASSETS)";
    SCOPED_TRACE(m->config().family);
    auto base = all_paths(*m);
    auto s = attach_lora(*m, all_targets(*m), /*seed=*/1);
    EXPECT_TRUE(has_lora(*m));
    EXPECT_GT(s.adapter_parameters, 0);
    auto with = all_paths(*m);
    ASSERT_EQ(base.size(), with.size());
    for (size_t i = 0; i < base.size(); ++i) EXPECT_EQ(max_abs_diff(base[i], with[i]), 0.0) << "path " << i;
  }
}

// Merged weights give the adapter forward's logits up to rounding: in float64 to 1e-10; in
// float32 to 2e-6 of the logits' magnitude (stories260K's logits reach ~18, where one float32 ulp
// is 1.9e-6; W + BA rounds once per weight where the adapter path rounds Wx and BAx separately,
// and five layers compound it: observed max abs diff 1.5e-5).
TEST(Lora, MergeEqualsAdapterForward) {
  struct Case {
    CausalLMPtr m;
    std::string spec;  // "" = every projection
    bool f64;
  };
  const std::string issue15 = "r=16,alpha=32,dropout=0.1,targets=q,v";
  for (auto& c : std::vector<Case>{{stories(), issue15, false}, {stories(), issue15, true}, {stories(), "", false},
                                   {stories(), "", true}, {tiny_gpt2(), "", false}, {tiny_gpt2(), "", true}}) {
    auto& m = c.m;
    ASSERT_TRUE(m);
    SCOPED_TRACE(m->config().family + (c.f64 ? " float64 " : " float32 ") + c.spec);
    if (c.f64) m->to(torch::kFloat64);
    auto base = all_paths(*m);
    attach_lora(*m, c.spec.empty() ? all_targets(*m, 4, 8.0, 0.1) : LoraConfig::parse(c.spec), 1);  // eval mode: no dropout
    randomize_b(*m);
    auto adapted = all_paths(*m);
    EXPECT_GT(max_abs_diff(base[0], adapted[0]), 1e-2);  // the adapters do something
    auto merged_names = merge_lora(*m);
    EXPECT_EQ(merged_names.size(), c.spec.empty() ? m->projections().size() : 10u);
    EXPECT_FALSE(has_lora(*m));
    for (const auto& kv : m->named_parameters()) EXPECT_EQ(kv.key().find("lora_"), std::string::npos) << kv.key();
    auto merged = all_paths(*m);
    for (size_t i = 0; i < merged.size(); ++i) {
      const double tol = c.f64 ? 1e-10 : 2e-6 * std::max(1.0, adapted[i].abs().max().item<double>());
      EXPECT_LE(max_abs_diff(adapted[i], merged[i]), tol) << "path " << i;
    }
  }
}

TEST(Lora, OnlyAdaptersGetGradients) {
  auto m = stories();
  ASSERT_TRUE(m);
  LoraConfig c;
  c.r = 4;
  c.alpha = 16;
  c.dropout = 0.1;
  c.targets = {"q", "v"};
  attach_lora(*m, c, 3);
  randomize_b(*m);
  m->train();
  auto logits = m->forward(padded_input(m->config().vocab_size));
  logits.pow(2).mean().backward();
  std::set<std::string> adapters;
  for (const auto& [name, p] : lora_parameters(*m)) {
    adapters.insert(name);
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0) << name;
  }
  EXPECT_EQ(adapters.size(), 2u * 2u * 5u);  // A and B, q and v, 5 layers
  for (const auto& kv : m->named_parameters()) {
    if (adapters.count(kv.key())) continue;
    EXPECT_FALSE(kv.value().requires_grad()) << kv.key();
    EXPECT_FALSE(kv.value().grad().defined()) << kv.key();
  }
  // the optimiser's groups hold the adapters only
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& kv : m->named_parameters()) named.emplace_back(kv.key(), kv.value());
  auto groups = train::split_param_groups(named);
  EXPECT_EQ(groups.decay.size() + groups.no_decay.size(), adapters.size());
  for (const auto& n : groups.decay_names) EXPECT_TRUE(adapters.count(n)) << n;
}

TEST(Lora, CheckpointedDropoutGradientsEqualPlain) {
  auto grads = [](bool ckpt) {
    auto m = stories();
    LoraConfig c = all_targets(*m, 4, 8.0, 0.2);
    attach_lora(*m, c, 3);
    randomize_b(*m);
    m->train();
    m->set_activation_checkpointing(ckpt);
    torch::manual_seed(123);  // same dropout masks
    m->forward(padded_input(m->config().vocab_size)).pow(2).mean().backward();
    std::vector<torch::Tensor> g;
    for (const auto& [name, p] : lora_parameters(*m)) g.push_back(p.grad().clone());
    return g;
  };
  ASSERT_TRUE(stories());
  auto plain = grads(false), ckpt = grads(true);
  ASSERT_EQ(plain.size(), ckpt.size());
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_LE(max_abs_diff(plain[i], ckpt[i]), 1e-6) << i;
}

TEST(Lora, SaveLoadRoundTripGivesIdenticalLogits) {
  for (auto m : {stories(), tiny_gpt2()}) {
    ASSERT_TRUE(m);
    SCOPED_TRACE(m->config().family);
    const bool gpt2 = m->config().family == "gpt2";
    LoraConfig c = LoraConfig::parse("r=8,alpha=32,dropout=0.05,targets=q,v,down");
    attach_lora(*m, c, 9);
    randomize_b(*m, 0.05, 8);
    auto want = all_paths(*m);
    const std::string dir = rmkit::testing::temp_dir("lora_roundtrip") + "/adapter";
    save_lora(dir, *m, c, "stories260K");

    auto j = nlohmann::json::parse(read_file(dir + "/adapter_config.json"));
    EXPECT_EQ(j["peft_type"], "LORA");
    EXPECT_EQ(j["r"], 8);
    EXPECT_EQ(j["lora_alpha"], 32);
    EXPECT_DOUBLE_EQ(j["lora_dropout"].get<double>(), 0.05);
    EXPECT_EQ(j["base_model_name_or_path"], "stories260K");
    EXPECT_EQ(j["fan_in_fan_out"], gpt2);
    EXPECT_EQ(j["target_modules"], gpt2 ? nlohmann::json::array({"attn.c_attn", "mlp.c_proj"})
                                         : nlohmann::json::array({"down_proj", "q_proj", "v_proj"}));

    auto fresh = gpt2 ? tiny_gpt2() : stories();
    LoraConfig loaded;
    auto s = load_lora(dir, *fresh, &loaded);
    EXPECT_EQ(loaded.r, 8);
    EXPECT_DOUBLE_EQ(loaded.alpha, 32.0);
    EXPECT_EQ(s.modules.size(), static_cast<size_t>((gpt2 ? 2 : 3) * m->config().num_hidden_layers));
    auto got = all_paths(*fresh);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(max_abs_diff(want[i], got[i]), 0.0) << "path " << i;
  }
}

TEST(Lora, PeftTensorNamesAndShapes) {
  auto m = stories();
  ASSERT_TRUE(m);
  attach_lora(*m, LoraConfig::parse("r=16,alpha=32,dropout=0.1,targets=q,v"), 0);
  const std::string dir = rmkit::testing::temp_dir("lora_names") + "/a";
  save_lora(dir, *m, LoraConfig::parse("r=16,alpha=32,dropout=0.1,targets=q,v"), "stories260K");
  auto t = read_safetensors(dir + "/adapter_model.safetensors");
  std::map<std::string, std::vector<int64_t>> want;
  for (int i = 0; i < 5; ++i) {  // stories260K: dim 64, 8 heads, 4 kv heads (kv_dim 32)
    const std::string p = "base_model.model.model.layers." + std::to_string(i) + ".self_attn.";
    want[p + "q_proj.lora_A.weight"] = {16, 64};
    want[p + "q_proj.lora_B.weight"] = {64, 16};
    want[p + "v_proj.lora_A.weight"] = {16, 64};
    want[p + "v_proj.lora_B.weight"] = {32, 16};
  }
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& [name, x] : t) got[name] = x.sizes().vec();
  EXPECT_EQ(got, want);
  EXPECT_EQ(peft_tensor_name("model.layers.0.self_attn.q_proj.lora_A.weight"),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  // B starts at zero, A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform_(a=sqrt(5)))
  for (const auto& [name, x] : t) {
    if (name.find("lora_B") != std::string::npos) {
      EXPECT_EQ(x.abs().max().item<double>(), 0.0) << name;
    } else {
      EXPECT_LE(x.abs().max().item<double>(), 1.0 / 8.0) << name;
    }
  }

  auto g = tiny_gpt2();
  attach_lora(*g, LoraConfig::parse("r=2,targets=q,o"), 0);
  std::set<std::string> names;
  for (const auto& [name, p] : lora_parameters(*g)) names.insert(peft_tensor_name(name));
  std::set<std::string> gwant;
  for (int i = 0; i < 2; ++i)
    for (const char* mod : {"attn.c_attn", "attn.c_proj"})
      for (const char* ab : {"lora_A", "lora_B"})
        gwant.insert("base_model.model.transformer.h." + std::to_string(i) + "." + mod + "." + ab + ".weight");
  EXPECT_EQ(names, gwant);
  for (const auto& [name, p] : lora_parameters(*g)) {
    if (name == "transformer.h.0.attn.c_attn.lora_B.weight") {
      EXPECT_EQ(p.sizes().vec(), (std::vector<int64_t>{72, 2}));  // [3 * n_embd, r]
    }
  }
}

TEST(Lora, TargetsBySuffixAndErrors) {
  auto m = stories();
  ASSERT_TRUE(m);
  auto s = match_lora_targets(*m, LoraConfig::parse("targets=layers.0.self_attn.q_proj,mlp.up_proj"));
  EXPECT_EQ(s.modules.size(), 1u + 5u);
  EXPECT_EQ(s.modules[0], "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(s.target_modules, (std::vector<std::string>{"layers.0.self_attn.q_proj", "mlp.up_proj"}));
  EXPECT_THROW(attach_lora(*m, LoraConfig::parse("targets=q,c_attn")), ConfigError);
  EXPECT_FALSE(has_lora(*m));
  auto g = tiny_gpt2();
  try {
    attach_lora(*g, LoraConfig::parse("targets=gate"));
    FAIL() << "gate on gpt2 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'gate' matches no projection of this gpt2 model"), std::string::npos) << e.what();
  }
  attach_lora(*m, LoraConfig::parse("targets=q"));
  EXPECT_THROW(attach_lora(*m, LoraConfig::parse("targets=v")), ConfigError);  // already attached
  EXPECT_THROW(save_pretrained(rmkit::testing::temp_dir("lora_refuse") + "/m", m->config(), *m, nullptr), ConfigError);
}

TEST(Lora, LoadRejectsMismatchedTensorsInOneMessage) {
  auto m = stories();
  ASSERT_TRUE(m);
  auto c = LoraConfig::parse("r=4,targets=q");
  attach_lora(*m, c);
  const std::string dir = rmkit::testing::temp_dir("lora_bad") + "/a";
  save_lora(dir, *m, c, "x");
  auto t = read_safetensors(dir + "/adapter_model.safetensors");
  t.erase("base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight");
  t["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = torch::zeros({4, 63});
  t["base_model.model.lm_head.lora_A.weight"] = torch::zeros({4, 64});
  write_safetensors(dir + "/adapter_model.safetensors", t);
  auto fresh = stories();
  try {
    load_lora(dir, *fresh);
    FAIL() << "mismatched adapter accepted";
  } catch (const ShapeError& e) {
    const std::string w = e.what();
    EXPECT_EQ(w.find('\n'), std::string::npos);
    EXPECT_NE(w.find("missing base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight"), std::string::npos) << w;
    EXPECT_NE(w.find("layers.0.self_attn.q_proj.lora_A.weight has shape [4, 63], expected [4, 64]"), std::string::npos) << w;
    EXPECT_NE(w.find("unexpected base_model.model.lm_head.lora_A.weight"), std::string::npos) << w;
  }
  EXPECT_FALSE(has_lora(*fresh));  // the failed load left no adapters behind
  nlohmann::json j = nlohmann::json::parse(read_file(dir + "/adapter_config.json"));
  j["use_dora"] = true;
  write_file_atomic(dir + "/adapter_config.json", j.dump());
  EXPECT_THROW(load_lora(dir, *fresh), ConfigError);
}

TEST(LoraConfigParse, FieldsDefaultsAndRoundTrip) {
  auto c = LoraConfig::parse("r=16,alpha=32,dropout=0.1,targets=q,v");
  EXPECT_EQ(c.r, 16);
  EXPECT_DOUBLE_EQ(c.alpha, 32.0);
  EXPECT_DOUBLE_EQ(c.dropout, 0.1);
  EXPECT_EQ(c.targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_DOUBLE_EQ(c.scale(), 2.0);
  EXPECT_EQ(c.to_string(), "r=16,alpha=32,dropout=0.1,targets=q,v");
  auto d = LoraConfig::parse("targets=q,k,v,o,gate,up,down, r = 4");
  EXPECT_EQ(d.r, 4);
  EXPECT_DOUBLE_EQ(d.alpha, 8.0);  // PEFT's default lora_alpha
  EXPECT_EQ(d.targets.size(), 7u);
  auto e = LoraConfig::parse("r=2");
  EXPECT_EQ(e.targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(LoraConfig::parse(c.to_string()).to_string(), c.to_string());
}

TEST(LoraConfigParse, BadStringsGiveOneLineErrorsNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"r=abc", "field 'r'"},          {"r=0", "field 'r'"},
      {"r=16x", "field 'r'"},          {"alpha=-1", "field 'alpha'"},
      {"alpha=nan", "field 'alpha'"},  {"dropout=1", "field 'dropout'"},
      {"dropout=", "field 'dropout'"}, {"targets=", "field 'targets'"},
      {"targets=q,,v", "field 'targets'"}, {"targets=q/v", "field 'targets'"},
      {"rank=4", "unknown field 'rank'"},  {"r=4,r=8", "field 'r' given twice"},
      {"r=4,q", "expected key=value"},     {"", "empty"},
  };
  for (const auto& [spec, want] : cases) {
    try {
      LoraConfig::parse(spec);
      ADD_FAILURE() << "accepted '" << spec << "'";
    } catch (const UsageError& e) {
      const std::string w = e.what();
      EXPECT_EQ(w.rfind("--lora: ", 0), 0u) << w;
      EXPECT_NE(w.find(want), std::string::npos) << spec << " -> " << w;
      EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    }
  }
}

}  // namespace
}  // namespace rmkit::model
