#include "rmkit/serve/detokenizer.h"

#include <algorithm>

namespace rmkit::serve {

size_t incomplete_utf8_tail(const std::string& s) {
  const size_t n = s.size();
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    const unsigned char c = static_cast<unsigned char>(s[n - k]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > k ? k : 0;
  }
  return 0;
}

StreamText::StreamText(const text::Tokenizer& tok, const std::vector<int32_t>& prompt, std::vector<std::string> stops)
    : tok_(tok), stops_(std::move(stops)) {
  const size_t keep = std::min<size_t>(4, prompt.size());
  ctx_.assign(prompt.end() - static_cast<long>(keep), prompt.end());
  ctx_text_ = tok_.decode(ctx_, /*skip_special=*/true);
  for (const auto& s : stops_) max_stop_ = std::max(max_stop_, s.size());
}

std::string StreamText::full() const {
  std::vector<int32_t> all = ctx_;
  all.insert(all.end(), ids_.begin(), ids_.end());
  std::string t = tok_.decode(all, /*skip_special=*/true);
  if (t.compare(0, ctx_text_.size(), ctx_text_) == 0) return t.substr(ctx_text_.size());
  return tok_.decode(ids_, true);
}

std::string StreamText::push(int32_t id, bool* stopped) {
  *stopped = false;
  if (stopped_) {
    *stopped = true;
    return "";
  }
  ids_.push_back(id);
  const std::string f = full();
  if (!stops_.empty()) {
    const size_t from = released_.size() > max_stop_ ? released_.size() - max_stop_ : 0;
    size_t hit = std::string::npos;
    for (const auto& s : stops_) {
      auto p = f.find(s, from);
      if (p != std::string::npos) hit = std::min(hit, p);
    }
    if (hit != std::string::npos) {
      stopped_ = *stopped = true;
      std::string out = hit > released_.size() ? f.substr(released_.size(), hit - released_.size()) : "";
      released_ += out;
      return out;
    }
  }
  size_t end = f.size() - incomplete_utf8_tail(f);
  // hold back the longest tail that is a proper prefix of a stop string
  for (size_t k = std::min(max_stop_ > 0 ? max_stop_ - 1 : 0, end); k > 0; --k) {
    bool prefix = false;
    for (const auto& s : stops_)
      if (s.size() > k && f.compare(end - k, k, s, 0, k) == 0) prefix = true;
    if (prefix) {
      end -= k;
      break;
    }
  }
  while (end > 0 && end < f.size() && (static_cast<unsigned char>(f[end]) & 0xC0) == 0x80) --end;
  if (end <= released_.size() || f.compare(0, released_.size(), released_) != 0) return "";
  std::string out = f.substr(released_.size(), end - released_.size());
  released_ += out;
  return out;
}

std::string StreamText::flush() {
  if (stopped_) return "";
  const std::string f = full();
  if (f.size() <= released_.size() || f.compare(0, released_.size(), released_) != 0) return "";
  std::string out = f.substr(released_.size());
  released_ += out;
  return out;
}

}  // namespace rmkit::serve
