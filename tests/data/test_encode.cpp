// encode_pair / encode_single: layout and every truncation rule, on hand-made conversations with a
// one-token-per-byte tokenizer so each expected length is counted by hand (see the comments).
#include "byte_tokenizer.h"
#include "rmkit/core/error.h"
#include "rmkit/data/encode.h"
#include "rmkit/data/readers.h"
#include "test_util.h"

namespace rmkit::data {
namespace {

using testing::ByteTokenizer;
using text::ChatTemplate;

PrefPair make(text::Conversation conv, std::string chosen, std::string rejected) {
  PrefPair p;
  p.prompt = std::move(conv);
  p.chosen = std::move(chosen);
  p.rejected = std::move(rejected);
  return p;
}

std::string dec(const ByteTokenizer& tok, const std::vector<int32_t>& ids) { return tok.decode(ids, false); }

// "Human: u1\n\nAssistant: a1\n\nHuman: u2\n\nAssistant:" = 9+2+13+2+9+2+10 = 47 chars.
const text::Conversation kTwoTurns = {{"user", "u1"}, {"assistant", "a1"}, {"user", "u2"}};

// A prompt role the template cannot render is the row's fault: located by file, line and field, and
// with skip_bad skipped and counted like the reader's malformed rows.
TEST(EncodePair, UnsupportedRoleNamesFileLineAndField) {
  ByteTokenizer tok;
  auto tmpl = ChatTemplate::named("plain");
  PrefPair bad = make({{"user", "u1"}, {"tool", "t"}}, "ok", "no");
  bad.file = "d.jsonl";
  bad.line = 7;
  const std::string want =
      "d.jsonl:7: field 'prompt[1].role': role 'tool' is not supported by chat template 'plain' "
      "(expected system, user or assistant)";
  EXPECT_EQ(template_problem(bad, tmpl), want);
  try {
    encode_pair(bad, tok, tmpl, 0);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()), want);
  }
  PrefPair good = make(kTwoTurns, "ok", "no");
  good.line = 3;
  EXPECT_EQ(template_problem(good, tmpl), "");

  std::vector<PrefPair> v = {good, bad, good};
  ReadStats st;
  st.kept = 3;
  EXPECT_THROW(skip_unrenderable(&v, tmpl, false, false, &st), FormatError);
  EXPECT_EQ(skip_unrenderable(&v, tmpl, true, false, &st), 1u);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(st.kept, 2u);
  EXPECT_EQ(st.skipped_bad, 1u);
  EXPECT_EQ(st.first_errors, std::vector<std::string>{want});
  // keep_dropped (rmkit score): the row stays, marked
  std::vector<PrefPair> w = {good, bad};
  EXPECT_EQ(skip_unrenderable(&w, tmpl, true, true, nullptr), 1u);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].skipped, "");
  EXPECT_EQ(w[1].skipped.rfind("malformed row: field 'prompt[1].role': role 'tool'", 0), 0u) << w[1].skipped;
}

TEST(EncodePair, PlainLayoutBosAndEos) {
  ByteTokenizer tok;
  auto tmpl = ChatTemplate::named("plain");
  EncodedPair e = encode_pair(make(kTwoTurns, "ok", "no!"), tok, tmpl, 0);
  EXPECT_EQ(dec(tok, e.prompt_ids), "<s>Human: u1\n\nAssistant: a1\n\nHuman: u2\n\nAssistant:");
  EXPECT_EQ(e.prompt_ids.size(), 48u);
  EXPECT_EQ(dec(tok, e.chosen_ids), " ok</s>");
  EXPECT_EQ(dec(tok, e.rejected_ids), " no!</s>");
  EXPECT_FALSE(e.truncated);
  EXPECT_EQ(e.length(), 53u);
  // Exactly at the limit: untouched.
  EncodedPair f = encode_pair(make(kTwoTurns, "ok", "no!"), tok, tmpl, 53);
  EXPECT_FALSE(f.truncated);
  EXPECT_EQ(f.prompt_ids, e.prompt_ids);

  ByteTokenizer no_bos(false);
  EncodedPair g = encode_pair(make(kTwoTurns, "ok", "no!"), no_bos, tmpl, 0);
  EXPECT_EQ(g.prompt_ids.size(), 47u);
  EXPECT_NE(g.prompt_ids[0], 1);
}

TEST(EncodePair, TemplateBosNotDoubledAndNoEosOutsidePlain) {
  ByteTokenizer tok;
  auto llama2 = ChatTemplate::named("llama2");
  ASSERT_TRUE(llama2.includes_bos());
  EncodedPair e = encode_pair(make({{"user", "hi"}}, "yes", "no"), tok, llama2, 0);
  ASSERT_GE(e.prompt_ids.size(), 2u);
  EXPECT_EQ(e.prompt_ids[0], 1);
  EXPECT_EQ(std::count(e.prompt_ids.begin(), e.prompt_ids.end(), 1), 1);
  EXPECT_EQ(e.chosen_ids.back(), 2);  // "</s>" end-of-turn text
  EXPECT_EQ(std::count(e.chosen_ids.begin(), e.chosen_ids.end(), 2), 1);

  auto chatml = ChatTemplate::named("chatml");
  EncodedPair c = encode_pair(make({{"user", "hi"}}, "yes", "no"), tok, chatml, 0);
  EXPECT_EQ(c.prompt_ids[0], 1);  // tokenizer BOS added: chatml text has none
  EXPECT_EQ(dec(tok, c.chosen_ids), chatml.render_response("yes"));  // no EOS appended
  EXPECT_EQ(dec(tok, c.prompt_ids), "<s>" + chatml.render_prompt({{"user", "hi"}}));
}

TEST(EncodeTruncation, OldestTurnDroppedFirst) {
  ByteTokenizer tok;
  auto tmpl = ChatTemplate::named("plain");
  // Full: 48 + 5 = 53 > 52 -> drop the u1/a1 exchange: "Human: u2\n\nAssistant:" = 21 (+BOS).
  EncodedPair e = encode_pair(make(kTwoTurns, "ok", "no!"), tok, tmpl, 52);
  EXPECT_TRUE(e.truncated);
  EXPECT_EQ(dec(tok, e.prompt_ids), "<s>Human: u2\n\nAssistant:");
  EXPECT_EQ(dec(tok, e.chosen_ids), " ok</s>");
  EXPECT_EQ(dec(tok, e.rejected_ids), " no!</s>");

  // Three exchanges: 73 chars; minus the first exchange ("Human: q1\n\nAssistant: r1\n\n" = 26)
  // = 47 (+BOS +5 = 53); minus both = 21 (+6 = 27).
  text::Conversation three = {{"user", "q1"}, {"assistant", "r1"}, {"user", "q2"},
                              {"assistant", "r2"}, {"user", "q3"}};
  EXPECT_FALSE(encode_pair(make(three, "ok", "no!"), tok, tmpl, 79).truncated);
  EncodedPair one = encode_pair(make(three, "ok", "no!"), tok, tmpl, 53);
  EXPECT_EQ(dec(tok, one.prompt_ids), "<s>Human: q2\n\nAssistant: r2\n\nHuman: q3\n\nAssistant:");
  EncodedPair two = encode_pair(make(three, "ok", "no!"), tok, tmpl, 52);
  EXPECT_EQ(dec(tok, two.prompt_ids), "<s>Human: q3\n\nAssistant:");
}

TEST(EncodeTruncation, LeadingSystemMessageKept) {
  ByteTokenizer tok;
  auto tmpl = ChatTemplate::named("plain");
  text::Conversation conv = {{"system", "SYS"}, {"user", "u1"}, {"assistant", "a1"}, {"user", "u2"}};
  // Full: 3 + 2 + 47 = 52 (+BOS +5 = 58).
  EXPECT_FALSE(encode_pair(make(conv, "ok", "no!"), tok, tmpl, 58).truncated);
  EncodedPair e = encode_pair(make(conv, "ok", "no!"), tok, tmpl, 57);
  EXPECT_TRUE(e.truncated);
  EXPECT_EQ(dec(tok, e.prompt_ids), "<s>SYS\n\nHuman: u2\n\nAssistant:");
}

TEST(EncodeTruncation, OldestPromptTokensCutWhenFinalTurnAndResponseFit) {
  ByteTokenizer tok;
  auto tmpl = ChatTemplate::named("plain");
  // "0123456789ABCDEFGHIJ\n\nHuman: u2\n\nAssistant:" = 20 + 23 = 43 (+BOS = 44), R = 5.
  // L = 40: budget after BOS 39; final turn (23) + 5 fits, so keep the last 34 prompt tokens.
  text::Conversation conv = {{"system", "0123456789ABCDEFGHIJ"}, {"user", "u2"}};
  EncodedPair e = encode_pair(make(conv, "ok", "no!"), tok, tmpl, 40);
  EXPECT_TRUE(e.truncated);
  EXPECT_EQ(dec(tok, e.prompt_ids), "<s>9ABCDEFGHIJ\n\nHuman: u2\n\nAssistant:");
  EXPECT_EQ(dec(tok, e.chosen_ids), " ok</s>");
  EXPECT_EQ(dec(tok, e.rejected_ids), " no!</s>");
  EXPECT_EQ(e.length(), 40u);
}

TEST(EncodeTruncation, ResponseCutAtEndWhenFinalTurnPlusResponseTooLong) {
  ByteTokenizer tok;
  auto tmpl = ChatTemplate::named("plain");
  // Prompt "Human: 0123456789\n\nAssistant:" = 29 (+BOS = 30). chosen " " + 40 x + EOS = 42,
  // rejected " short" + EOS = 7. L = 64: budget 63; 29 + 42 > 63, so the chosen reply is cut to
  // 63 - 29 = 34 tokens (" " + 33 x, no EOS) and the prompt stays whole.
  std::string x40(40, 'x');
  EncodedPair e = encode_pair(make({{"user", "0123456789"}}, x40, "short"), tok, tmpl, 64);
  EXPECT_TRUE(e.truncated);
  EXPECT_EQ(dec(tok, e.prompt_ids), "<s>Human: 0123456789\n\nAssistant:");
  EXPECT_EQ(dec(tok, e.chosen_ids), " " + std::string(33, 'x'));
  EXPECT_EQ(dec(tok, e.rejected_ids), " short</s>");
  EXPECT_EQ(e.chosen_length(), 64u);

  // A final user turn longer than the budget: the response keeps a quarter of it (63 / 4 = 15)
  // and the prompt its last 48 tokens: 36 q + "\n\nAssistant:".
  EncodedPair g = encode_pair(make({{"user", std::string(100, 'q')}}, x40, "short"), tok, tmpl, 64);
  EXPECT_EQ(dec(tok, g.prompt_ids), "<s>" + std::string(36, 'q') + "\n\nAssistant:");
  EXPECT_EQ(dec(tok, g.chosen_ids), " " + std::string(14, 'x'));
  EXPECT_EQ(dec(tok, g.rejected_ids), " short</s>");
  EXPECT_EQ(g.length(), 64u);

  EXPECT_THROW(encode_pair(make(kTwoTurns, "ok", "no"), tok, tmpl, 2), UsageError);
}

TEST(EncodeSingle, SameLayoutAsPairs) {
  ByteTokenizer tok;
  auto tmpl = ChatTemplate::named("plain");
  EncodedSingle s = encode_single(kTwoTurns, "ok", tok, tmpl, 0);
  EncodedPair p = encode_pair(make(kTwoTurns, "ok", "no!"), tok, tmpl, 0);
  EXPECT_EQ(s.prompt_ids, p.prompt_ids);
  EXPECT_EQ(s.response_ids, p.chosen_ids);
  EncodedSingle t = encode_single(kTwoTurns, "ok", tok, tmpl, 30);
  EXPECT_TRUE(t.truncated);
  EXPECT_EQ(dec(tok, t.prompt_ids), "<s>Human: u2\n\nAssistant:");
  EXPECT_EQ(t.length(), 26u);
}

// On real data: truncation happens exactly for the pairs whose full encoding is too long, every
// truncated pair ends up within the limit, and untruncated pairs equal their unlimited encoding.
TEST(EncodeRealData, TruncationCountMatchesOverlongPairs) {
  std::string path = rmkit::testing::asset("prefs/rmb_pairwise.jsonl.gz");
  RMKIT_REQUIRE_ASSET(path);
  ReadOptions o;
  o.keep_raw = false;
  auto pairs = read_prefs(path, o);
  pairs.resize(3000);
  ByteTokenizer tok;
  auto tmpl = ChatTemplate::named("plain");
  EncodeStats st_full, st;
  auto full = encode_pairs(pairs, tok, tmpl, 0, &st_full);
  auto lim = encode_pairs(pairs, tok, tmpl, 1024, &st);
  EXPECT_EQ(st_full.truncated, 0u);
  size_t overlong = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    ASSERT_EQ(lim[i].index, i);
    if (full[i].length() > 1024) {
      ++overlong;
      EXPECT_TRUE(lim[i].truncated) << i;
      EXPECT_LE(lim[i].length(), 1024u) << i;
      EXPECT_EQ(lim[i].prompt_ids[0], 1) << i;
    } else {
      EXPECT_FALSE(lim[i].truncated) << i;
      EXPECT_EQ(lim[i].prompt_ids, full[i].prompt_ids) << i;
      EXPECT_EQ(lim[i].chosen_ids, full[i].chosen_ids) << i;
    }
  }
  EXPECT_EQ(st.truncated, overlong);
  EXPECT_EQ(st.pairs, 3000u);
  EXPECT_GT(overlong, 100u);  // rmb prompts are long: the rule is exercised
}

// With a real tokenizer: prompt + reply ids decode back to the template's full render.
TEST(EncodeRealData, Stories260KTokenizerRoundTrip) {
  std::string tpath = rmkit::testing::asset("models/stories260K/tok512.bin");
  RMKIT_REQUIRE_ASSET(tpath);
  auto tok = text::load_tokenizer(tpath);
  auto tmpl = ChatTemplate::named("plain");
  text::Conversation conv = {{"user", "Tell me a story about a cat."}};
  EncodedPair e = encode_pair(make(conv, "Once upon a time there was a cat.", "No."), *tok, tmpl, 0);
  EXPECT_EQ(e.prompt_ids[0], tok->bos_id());
  EXPECT_EQ(e.chosen_ids.back(), tok->eos_id());
  std::vector<int32_t> seq = e.prompt_ids;
  seq.insert(seq.end(), e.chosen_ids.begin(), e.chosen_ids.end());
  std::string full = tmpl.render_prompt(conv) + tmpl.render_response("Once upon a time there was a cat.");
  EXPECT_EQ(tok->decode(seq, /*skip_special=*/true), full);
  std::vector<int32_t> expect = {tok->bos_id()};
  for (int32_t id : tok->encode(full, false, true)) expect.push_back(id);
  expect.push_back(tok->eos_id());
  EXPECT_EQ(seq, expect);
  // The rejected side shares prompt_ids and is likewise the encoding of its full text.
  std::vector<int32_t> rej = e.prompt_ids;
  rej.insert(rej.end(), e.rejected_ids.begin(), e.rejected_ids.end());
  EXPECT_EQ(tok->decode(rej, true), tmpl.render_prompt(conv) + tmpl.render_response("No."));
}

}  // namespace
}  // namespace rmkit::data
