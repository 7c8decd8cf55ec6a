// Templating, BOS/EOS and the truncation rule documented in encode.h.
#include "rmkit/data/encode.h"

#include "rmkit/core/error.h"

namespace rmkit::data {
namespace {

using Ids = std::vector<int32_t>;

struct Core {
  Ids head;    // BOS (added, or the template's own BOS token moved out of the prompt)
  Ids prompt;  // prompt tokens after head
  std::vector<Ids> responses;
  bool truncated = false;
};

Ids encode_text(const text::Tokenizer& tok, const std::string& s) {
  return tok.encode(s, /*add_special=*/false, /*parse_special=*/true);
}

size_t common_prefix(const Ids& a, const Ids& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// Encodes conv + each reply as one text (so tokens merging across the prompt/reply boundary, or a
// SentencePiece dummy prefix, come out exactly as in the full sequence) and splits at the longest
// prefix shared with the prompt's own encoding: prompt_ids + reply_ids == encode(full text).
void encode_all(const text::Conversation& conv, const std::vector<std::string>& replies,
                const text::Tokenizer& tok, const text::ChatTemplate& tmpl, Core* c) {
  const bool add_eos = tmpl.name() == "plain" && tok.eos_id() >= 0;
  const std::string ptext = tmpl.render_prompt(conv);
  Ids p = encode_text(tok, ptext);
  std::vector<Ids> full;
  size_t common = p.size();
  for (const auto& r : replies) {
    Ids f = encode_text(tok, ptext + tmpl.render_response(r));
    if (add_eos) f.push_back(tok.eos_id());
    common = std::min(common, common_prefix(p, f));
    full.push_back(std::move(f));
  }
  c->head.clear();
  size_t skip = 0;
  int32_t bos = tok.bos_id();
  if (bos >= 0) {
    if (common > 0 && p[0] == bos) {
      skip = 1;
      c->head.push_back(bos);
    } else if (!tmpl.includes_bos()) {
      c->head.push_back(bos);
    }  // else: the template's BOS text is not the tokenizer's BOS; keep the text as is
  }
  c->prompt.assign(p.begin() + skip, p.begin() + common);
  c->responses.clear();
  for (auto& f : full) c->responses.emplace_back(f.begin() + common, f.end());
}

size_t longest(const std::vector<Ids>& rs) {
  size_t r = 0;
  for (const auto& x : rs) r = std::max(r, x.size());
  return r;
}

// Tokens of the final user turn onward (role header included) within the encoded prompt.
size_t final_turn_tokens(const text::Conversation& conv, size_t final_user,
                         const text::Tokenizer& tok, const text::ChatTemplate& tmpl,
                         const Core& c) {
  size_t total = c.head.size() + c.prompt.size();
  std::string full = tmpl.render_prompt(conv);
  text::Conversation before(conv.begin(), conv.begin() + final_user);
  std::string prefix = tmpl.render(before, false);
  if (full.compare(0, prefix.size(), prefix) == 0) {
    size_t n = encode_text(tok, prefix).size();
    if (tok.bos_id() >= 0 && c.head.size() == 1 && !tmpl.includes_bos()) ++n;  // added BOS
    return n >= total ? 0 : std::min(c.prompt.size(), total - n);
  }
  // Fallback: locate the final user content in the rendered text.
  const std::string& content = conv[final_user].content;
  size_t pos = content.empty() ? std::string::npos : full.rfind(content);
  if (pos == std::string::npos) return c.prompt.size();
  return std::min(c.prompt.size(), encode_text(tok, full.substr(pos)).size());
}

Core encode_core(const text::Conversation& conv_in, const std::vector<std::string>& replies,
                 const text::Tokenizer& tok, const text::ChatTemplate& tmpl, size_t max_length) {
  Core c;
  text::Conversation conv = conv_in;
  encode_all(conv, replies, tok, tmpl, &c);
  if (max_length == 0) return c;
  auto fits = [&] { return c.head.size() + c.prompt.size() + longest(c.responses) <= max_length; };
  if (fits()) return c;
  if (max_length < c.head.size() + 2)
    throw UsageError("max_length " + std::to_string(max_length) + " is too small");
  c.truncated = true;

  // 2. Drop whole turns, oldest first.
  size_t first = (!conv.empty() && conv[0].role == "system") ? 1 : 0;
  size_t final_user = conv.size();
  for (size_t i = conv.size(); i-- > first;)
    if (conv[i].role == "user") {
      final_user = i;
      break;
    }
  if (final_user == conv.size()) final_user = first;  // no user turn: nothing to drop
  std::vector<size_t> starts;  // turn starts after the first turn, up to the final user turn
  for (size_t i = first + 1; i <= final_user && i < conv.size(); ++i)
    if (conv[i].role == "user") starts.push_back(i);
  for (size_t s : starts) {
    text::Conversation shorter(conv.begin(), conv.begin() + first);
    shorter.insert(shorter.end(), conv.begin() + s, conv.end());
    encode_all(shorter, replies, tok, tmpl, &c);
    if (fits()) return c;
  }
  if (!starts.empty()) {
    // The last attempt (system + final user turn onward) is the current encoding.
    text::Conversation kept(conv.begin(), conv.begin() + first);
    kept.insert(kept.end(), conv.begin() + final_user, conv.end());
    conv = std::move(kept);
    final_user = first;
  }

  // 3. Cut tokens.
  const long A = static_cast<long>(max_length - c.head.size());
  const long T = conv.empty() ? 0 : static_cast<long>(final_turn_tokens(conv, final_user, tok, tmpl, c));
  const long Rl = static_cast<long>(longest(c.responses));
  long prompt_keep;
  if (T + Rl <= A) {
    prompt_keep = A - Rl;
  } else {
    long rb = std::max(A - T, std::min(Rl, A / 4));
    rb = std::max(rb, 1L);
    for (auto& r : c.responses)
      if (static_cast<long>(r.size()) > rb) r.resize(rb);
    prompt_keep = A - rb;
  }
  if (static_cast<long>(c.prompt.size()) > prompt_keep)
    c.prompt.erase(c.prompt.begin(), c.prompt.end() - prompt_keep);
  return c;
}

}  // namespace

std::string template_problem(const PrefPair& pair, const text::ChatTemplate& tmpl) {
  for (size_t i = 0; i < pair.prompt.size(); ++i) {
    const std::string why = tmpl.role_problem(pair.prompt[i].role);
    if (why.empty()) continue;
    const std::string where = pair.file.empty() ? "pair '" + pair.id + "'" : pair.file + ":" + std::to_string(pair.line);
    return where + ": field 'prompt[" + std::to_string(i) + "].role': " + why;
  }
  return "";
}

size_t skip_unrenderable(std::vector<PrefPair>* pairs, const text::ChatTemplate& tmpl, bool skip_bad,
                         bool keep_dropped, ReadStats* stats) {
  size_t n = 0;
  std::vector<PrefPair> kept;
  kept.reserve(pairs->size());
  for (auto& p : *pairs) {
    const std::string why = p.skipped.empty() ? template_problem(p, tmpl) : "";
    if (!why.empty()) {
      if (!skip_bad) throw FormatError(why);
      ++n;
      if (stats) {
        ++stats->skipped_bad;
        if (stats->kept > 0) --stats->kept;
        if (stats->first_errors.size() < 10) stats->first_errors.push_back(why);
      }
      if (!keep_dropped) continue;
      p.skipped = "malformed row: " + clip_text(why.substr(why.find(": ") + 2), 200);
    }
    kept.push_back(std::move(p));
  }
  *pairs = std::move(kept);
  return n;
}

EncodedPair encode_pair(const PrefPair& pair, const text::Tokenizer& tok,
                        const text::ChatTemplate& tmpl, size_t max_length) {
  if (const std::string why = template_problem(pair, tmpl); !why.empty()) throw FormatError(why);
  Core c = encode_core(pair.prompt, {pair.chosen, pair.rejected}, tok, tmpl, max_length);
  EncodedPair e;
  e.prompt_ids = std::move(c.head);
  e.prompt_ids.insert(e.prompt_ids.end(), c.prompt.begin(), c.prompt.end());
  e.chosen_ids = std::move(c.responses[0]);
  e.rejected_ids = std::move(c.responses[1]);
  e.truncated = c.truncated;
  return e;
}

std::vector<EncodedPair> encode_pairs(const std::vector<PrefPair>& pairs, const text::Tokenizer& tok,
                                      const text::ChatTemplate& tmpl, size_t max_length,
                                      EncodeStats* stats) {
  std::vector<EncodedPair> out;
  out.reserve(pairs.size());
  EncodeStats st;
  for (size_t i = 0; i < pairs.size(); ++i) {
    out.push_back(encode_pair(pairs[i], tok, tmpl, max_length));
    out.back().index = i;
    ++st.pairs;
    if (out.back().truncated) ++st.truncated;
  }
  if (stats) *stats = st;
  return out;
}

EncodedSingle encode_single(const text::Conversation& conv, const std::string& reply,
                            const text::Tokenizer& tok, const text::ChatTemplate& tmpl,
                            size_t max_length) {
  Core c = encode_core(conv, {reply}, tok, tmpl, max_length);
  EncodedSingle e;
  e.prompt_ids = std::move(c.head);
  e.prompt_ids.insert(e.prompt_ids.end(), c.prompt.begin(), c.prompt.end());
  e.response_ids = std::move(c.responses[0]);
  e.truncated = c.truncated;
  return e;
}

std::vector<size_t> pair_lengths(const std::vector<EncodedPair>& enc) {
  std::vector<size_t> l;
  l.reserve(enc.size());
  for (const auto& e : enc) l.push_back(e.length());
  return l;
}

}  // namespace rmkit::data
