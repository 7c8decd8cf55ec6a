// rmkit lora merge: a PEFT adapter trained (here: randomised) on an HF base directory is folded
// into the weights; the written directory loads as a plain model whose logits equal the adapter
// forward; usage and runtime errors are one line with exit codes 2 and 1.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/lora.h"
#include "test_util.h"

namespace {

using rmkit::testing::asset;
using rmkit::testing::run_rmkit;
using rmkit::testing::shell_quote;

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

torch::Tensor logits(rmkit::model::CausalLMImpl& m) {
  torch::NoGradGuard ng;
  rmkit::model::ForwardInput in;
  in.input_ids = torch::tensor({{1, 403, 407, 261, 378, 9, 63, 5}}, torch::kLong);
  return m.forward(in);  // [1, 8, V]
}

TEST(CliLora, MergeWritesACheckpointEqualToTheAdapterForward) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  const std::string dir = rmkit::testing::temp_dir("cli_lora");
  const std::string base = dir + "/base", adapter = dir + "/adapter", out = dir + "/merged";
  {  // an HF base directory and an adapter trained on it
    auto lm = rmkit::model::load_pretrained(asset("models/stories260K/stories260K.bin"),
                                            asset("models/stories260K/tok512.model"));
    rmkit::model::save_pretrained(base, lm.config, *lm.model, lm.tokenizer.get());
  }
  auto lm = rmkit::model::load_pretrained(base);
  auto cfg = rmkit::model::LoraConfig::parse("r=4,alpha=8,dropout=0.1,targets=q,v,up");
  rmkit::model::attach_lora(*lm.model, cfg, 2);
  {
    torch::NoGradGuard ng;
    torch::manual_seed(3);
    for (auto& [name, p] : rmkit::model::lora_parameters(*lm.model))
      if (name.find("lora_B") != std::string::npos) p.normal_(0.0, 0.05);
  }
  rmkit::model::save_lora(adapter, *lm.model, cfg, base);
  auto want = logits(*lm.model);

  auto r = run_rmkit("lora merge --base " + shell_quote(base) + " --adapter " + shell_quote(adapter) + " --output " +
                     shell_quote(out) + " --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("merged 15 adapters (r=4, alpha=8"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("q_proj,up_proj,v_proj"), std::string::npos) << r.err;
  EXPECT_TRUE(rmkit::path_exists(out + "/config.json"));
  EXPECT_TRUE(rmkit::path_exists(out + "/tokenizer.model"));
  auto merged = rmkit::model::load_pretrained(out);  // plain model: no lora tensors in the checkpoint
  EXPECT_FALSE(rmkit::model::has_lora(*merged.model));
  auto got = logits(*merged.model);
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-5);
  EXPECT_GT((got - logits(*rmkit::model::load_pretrained(base).model)).abs().max().item<double>(), 1e-3);
}

TEST(CliLora, ErrorsAreOneLine) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  const std::string dir = rmkit::testing::temp_dir("cli_lora_err");
  const std::string model = shell_quote(asset("models/stories260K/stories260K.bin"));
  auto missing = run_rmkit("lora merge --base " + model + " --output " + dir + "/o");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(lines(missing.err), 1u) << missing.err;
  EXPECT_NE(missing.err.find("--adapter"), std::string::npos) << missing.err;
  auto verb = run_rmkit("lora fold");
  EXPECT_EQ(verb.exit_code, 2);
  EXPECT_NE(verb.err.find("unknown verb 'fold'"), std::string::npos) << verb.err;
  auto no_dir = run_rmkit("lora merge --base " + model + " --adapter " + dir + "/none --output " + dir + "/o");
  EXPECT_EQ(no_dir.exit_code, 1);
  EXPECT_EQ(lines(no_dir.err), 1u) << no_dir.err;
  EXPECT_NE(no_dir.err.find("no such adapter directory"), std::string::npos) << no_dir.err;
  EXPECT_FALSE(rmkit::path_exists(dir + "/o"));
  auto dtype = run_rmkit("lora merge --base " + model + " --adapter a --output o --dtype int8");
  EXPECT_EQ(dtype.exit_code, 2);
  EXPECT_EQ(lines(dtype.err), 1u) << dtype.err;
}

}  // namespace
