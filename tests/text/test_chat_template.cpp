// Chat templates: expected strings hand-derived from the chat_template Jinja in
// tokenizers/llama3/tokenizer_config.json and tokenizers/qwen3/tokenizer_config.json (and the
// published Llama-2 / Mistral / Gemma templates), the prompt+response invariant on real
// conversations, and the single-BOS contract with the Llama-3 tokenizer.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"
#include "test_util.h"

using rmkit::testing::asset;
using rmkit::text::ChatTemplate;
using rmkit::text::Conversation;

namespace {

std::string config_template(const std::string& rel) {
  auto j = nlohmann::json::parse(rmkit::read_file(asset(rel)));
  return j.at("chat_template").get<std::string>();
}

const Conversation kSysUser = {{"system", "You are helpful."}, {"user", "  Hi there \n"}};

TEST(ChatTemplate, Llama3MatchesConfigJinja) {
  // Jinja: bos_token on the first message; '<|start_header_id|>' + role + '<|end_header_id|>\n\n'
  // + content|trim + '<|eot_id|>'; then '<|start_header_id|>assistant<|end_header_id|>\n\n'.
  auto t = ChatTemplate::named("llama3");
  EXPECT_EQ(t.render_prompt(kSysUser),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  Conversation full = kSysUser;
  full.push_back({"assistant", "\nHello!  "});
  EXPECT_EQ(t.render(full, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>");
  EXPECT_EQ(t.render_response("\nHello!  "), "Hello!<|eot_id|>");
  EXPECT_TRUE(t.includes_bos());
  // |trim is Python str.strip(): Unicode spaces (U+3000, U+00A0) go too.
  EXPECT_EQ(t.render_response("\xe3\x80\x80ok\xc2\xa0"), "ok<|eot_id|>");
}

TEST(ChatTemplate, Qwen3MatchesConfigJinja) {
  auto t = ChatTemplate::named("qwen3");
  EXPECT_EQ(t.render_prompt(kSysUser),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n  Hi there \n<|im_end|>\n"
            "<|im_start|>assistant\n");
  // Earlier replies (before the last user query) drop their reasoning; the final reply gets the
  // think block, empty when there is no reasoning.
  Conversation c = {{"user", "Q1"},
                    {"assistant", "<think>\nplan\n</think>\n\nA1"},
                    {"user", "Q2"},
                    {"assistant", "A2"}};
  EXPECT_EQ(t.render(c, false),
            "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n");
  EXPECT_EQ(t.render_response("<think>\nstep\n\n</think>\n\nAnswer"),
            "<think>\nstep\n</think>\n\nAnswer<|im_end|>\n");
  EXPECT_FALSE(t.includes_bos());
}

TEST(ChatTemplate, ChatmlLlama2MistralGemmaPlainCustom) {
  Conversation c = {{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
  EXPECT_EQ(ChatTemplate::named("chatml").render_prompt(c),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplate::named("llama2").render_prompt(c),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
  EXPECT_EQ(ChatTemplate::named("llama2").render_response(" A2\n"), " A2 </s>");
  EXPECT_EQ(ChatTemplate::named("mistral").render_prompt(c), "<s>[INST] S\n\nU1 [/INST]A1</s>[INST] U2 [/INST]");
  EXPECT_EQ(ChatTemplate::named("mistral").render_response("A2"), "A2</s>");
  EXPECT_EQ(ChatTemplate::named("gemma").render_prompt(c),
            "<bos><start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
            "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(ChatTemplate::named("plain").render_prompt(c), "S\n\nHuman: U1\n\nAssistant: A1\n\nHuman: U2\n\nAssistant:");
  EXPECT_EQ(ChatTemplate::named("plain").render_response("A2"), " A2");
  EXPECT_FALSE(ChatTemplate::named("plain").includes_bos());
  EXPECT_TRUE(ChatTemplate::named("llama2").includes_bos());
  EXPECT_TRUE(ChatTemplate::named("gemma").includes_bos());

  auto custom = ChatTemplate::from_string("<|{role}|>\n{content}</s>\n");
  EXPECT_EQ(custom.name(), "custom");
  EXPECT_EQ(custom.render_prompt({{"user", "say {role}"}}), "<|user|>\nsay {role}</s>\n<|assistant|>\n");
  EXPECT_EQ(custom.render_response("ok"), "ok</s>\n");
  EXPECT_THROW(ChatTemplate::from_string("<|{role}|>"), rmkit::ConfigError);
  // spec() is what rmkit.json stores: the format for custom templates, the name otherwise
  EXPECT_EQ(custom.spec(), "<|{role}|>\n{content}</s>\n");
  EXPECT_EQ(ChatTemplate::named("gemma").spec(), "gemma");
}

TEST(ChatTemplate, ErrorsNameTheProblem) {
  try {
    ChatTemplate::named("vicuna");
    FAIL();
  } catch (const rmkit::ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("vicuna"), std::string::npos) << m;
    for (const char* n : {"llama3", "chatml", "llama2", "mistral", "gemma", "plain"})
      EXPECT_NE(m.find(n), std::string::npos) << m;
  }
  try {
    ChatTemplate::named("chatml").render({{"user", "x"}, {"tool", "y"}}, true);
    FAIL();
  } catch (const rmkit::ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'tool'"), std::string::npos) << m;
    EXPECT_NE(m.find("chatml"), std::string::npos) << m;
  }
}

TEST(ChatTemplate, DetectFromConfigSourceAndModelType) {
  RMKIT_REQUIRE_ASSET(asset("tokenizers/llama3/tokenizer_config.json"));
  EXPECT_EQ(ChatTemplate::detect("", config_template("tokenizers/llama3/tokenizer_config.json")).name(), "llama3");
  EXPECT_EQ(ChatTemplate::detect("qwen2", config_template("tokenizers/qwen3/tokenizer_config.json")).name(), "qwen3");
  EXPECT_EQ(ChatTemplate::detect("", "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}").name(), "chatml");
  EXPECT_EQ(ChatTemplate::detect("", "{{ bos_token + '[INST] <<SYS>>\\n' }}").name(), "llama2");
  EXPECT_EQ(ChatTemplate::detect("llama", "{{ '[INST] ' + m['content'] + ' [/INST]' }}").name(), "mistral");
  EXPECT_EQ(ChatTemplate::detect("", "<start_of_turn>").name(), "gemma");
  EXPECT_EQ(ChatTemplate::detect("llama", "").name(), "llama3");
  EXPECT_EQ(ChatTemplate::detect("qwen2", "").name(), "chatml");
  EXPECT_EQ(ChatTemplate::detect("qwen3", "").name(), "qwen3");
  EXPECT_EQ(ChatTemplate::detect("gemma2", "").name(), "gemma");
  EXPECT_EQ(ChatTemplate::detect("Mistral", "").name(), "mistral");
  EXPECT_EQ(ChatTemplate::detect("gpt2", "").name(), "plain");
}

// render_prompt(c) + render_response(r) == render(c + {assistant, r}) on real conversations.
TEST(ChatTemplate, PromptPlusResponseEqualsRenderOnRealData) {
  RMKIT_REQUIRE_ASSET(asset("prefs/rm_bench_chat_code_safety.jsonl.gz"));
  std::vector<std::pair<Conversation, std::string>> rows;
  for (const char* f : {"prefs/rm_bench_chat_code_safety.jsonl.gz", "prefs/ultrafeedback_sample.jsonl.gz",
                        "prefs/hh_rlhf_harmless_base_test.jsonl.gz", "prefs/rmb_pairwise.jsonl.gz"}) {
    int taken = 0;
    rmkit::for_each_line(asset(f), [&](const std::string& line, size_t) {
      auto j = nlohmann::json::parse(line);
      Conversation c;
      for (const auto& m : j.at("prompt")) c.push_back({m.at("role"), m.at("content")});
      rows.push_back({c, j.at("chosen").get<std::string>()});
      return ++taken < 60;
    });
  }
  ASSERT_GE(rows.size(), 200u);
  size_t multi_turn = 0;
  for (const auto& [c, r] : rows) multi_turn += c.size() > 1;
  EXPECT_GT(multi_turn, 10u);  // hh-rlhf rows carry earlier turns
  std::vector<ChatTemplate> all;
  for (const auto& n : ChatTemplate::names()) all.push_back(ChatTemplate::named(n));
  all.push_back(ChatTemplate::from_string("### {role}:\n{content}\n\n"));
  for (const auto& t : all) {
    int ok = 0;
    for (const auto& [c, r] : rows) {
      Conversation full = c;
      full.push_back({"assistant", r});
      std::string joined = t.render_prompt(c) + t.render_response(r);
      ok += joined == t.render(full, false);
      std::string bos = t.name() == "llama3" ? "<|begin_of_text|>" : t.name() == "gemma" ? "<bos>"
                        : t.name() == "llama2" || t.name() == "mistral" ? "<s>" : "";
      EXPECT_EQ(t.includes_bos(), !bos.empty()) << t.name();
      if (!bos.empty()) EXPECT_EQ(joined.rfind(bos, 0), 0u) << t.name();
    }
    EXPECT_EQ(ok, static_cast<int>(rows.size())) << t.name();
  }
}

// Callers follow includes_bos(): tokenize with add_special = !includes_bos(), parse_special = true.
TEST(ChatTemplate, NoDoubleBosWithLlama3Tokenizer) {
  RMKIT_REQUIRE_ASSET(asset("tokenizers/llama3/tokenizer.json"));
  auto tok = rmkit::text::load_tokenizer(asset("tokenizers/llama3"));
  auto t = ChatTemplate::detect("llama", tok->chat_template_source());
  ASSERT_EQ(t.name(), "llama3");
  Conversation c = {{"user", "Hello"}, {"assistant", "Hi!"}, {"user", "How are you?"}};
  auto ids = tok->encode(t.render_prompt(c) + t.render_response("Fine."), !t.includes_bos(), true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), tok->bos_id());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->bos_id()), 1);
  EXPECT_EQ(tok->piece_to_id("<|eot_id|>"), ids.back());
}

TEST(ChatTemplate, NoDoubleBosWithLlama2SentencePiece) {
  RMKIT_REQUIRE_ASSET(asset("tokenizers/llama2/tokenizer.model"));
  auto tok = rmkit::text::load_tokenizer(asset("tokenizers/llama2/tokenizer.model"));
  auto t = ChatTemplate::named("llama2");
  auto ids = tok->encode(t.render_prompt({{"system", "Be brief."}, {"user", "Hello"}}), !t.includes_bos(), true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 1);
  // Meta's reference: [bos] + encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST]").
  std::vector<int32_t> want = {1};
  auto body = tok->encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST]");
  want.insert(want.end(), body.begin(), body.end());
  EXPECT_EQ(ids, want);
  // The plain template carries no BOS text, so the tokenizer adds exactly one.
  auto p = ChatTemplate::named("plain");
  auto pids = tok->encode(p.render_prompt({{"user", "Hello"}}), !p.includes_bos(), true);
  EXPECT_EQ(pids.front(), 1);
  EXPECT_EQ(std::count(pids.begin(), pids.end(), 1), 1);
}

}  // namespace

// detect(model_type, tokenizer) keeps a template only when its marker tokens are in the vocabulary.
TEST(ChatTemplate, DetectWithTokenizerFallsBackToPlainWithoutMarkers) {
  auto tok512 = rmkit::text::load_tokenizer(rmkit::asset_path("models/stories260K/tok512.bin"));
  EXPECT_EQ(rmkit::text::ChatTemplate::detect("llama", "").name(), "llama3");  // by model type alone
  EXPECT_EQ(rmkit::text::ChatTemplate::detect("llama", *tok512).name(), "plain");
  auto llama3 = rmkit::text::load_tokenizer(rmkit::asset_path("tokenizers/llama3/tokenizer.json"));
  EXPECT_EQ(rmkit::text::ChatTemplate::detect("llama", *llama3).name(), "llama3");
  auto qwen = rmkit::text::load_tokenizer(rmkit::asset_path("tokenizers/qwen3/tokenizer.json"));
  EXPECT_EQ(rmkit::text::ChatTemplate::detect("qwen2", *qwen).name(), "qwen3");  // its Jinja has <think>
}
