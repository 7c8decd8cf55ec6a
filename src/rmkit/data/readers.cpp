// read_prefs: file iteration (jsonl / jsonl.gz / json array), format detection, error location,
// skip_bad bookkeeping and the empty / identical filters.
#include "rmkit/data/readers.h"

#include <algorithm>
#include <cctype>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::data {
namespace {

using json = nlohmann::json;

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

std::string key_list(const json& row) {
  if (!row.is_object()) return std::string("a JSON ") + row.type_name();
  std::string keys;
  for (auto it = row.begin(); it != row.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
  return "keys [" + keys + "]";
}

class Collector {
 public:
  Collector(std::string path, const ReadOptions& opts, ReadStats* stats)
      : path_(std::move(path)), opts_(opts), stats_(stats) {
    format_ = opts.format;
    if (format_ != "auto") {
      const auto& f = pref_formats();
      if (std::find(f.begin(), f.end(), format_) == f.end())
        throw UsageError("unknown preference format '" + format_ +
                         "' (expected auto, normalized, trl, hh, rm-bench or rewardbench)");
    }
  }

  // `where` is "LINE" for jsonl and "element N" for arrays.
  void row(const json& r, size_t line, const std::string& where) {
    ++stats_->rows;
    try {
      if (format_ == "auto") {
        std::string f = detect_format(r);
        if (f.empty())
          throw FormatError("cannot detect the preference format from " + key_list(r) +
                            " (expected normalized, trl, hh, rm-bench or rewardbench rows)");
        format_ = f;
      }
      bool mismatched = false;
      std::vector<PrefPair> got = parse_row(r, format_, path_, line, &mismatched);
      if (mismatched) {
        ++stats_->dropped_mismatched;
        keep_dropped(r, line, "chosen and rejected transcripts disagree before the final reply");
      }
      for (auto& p : got) {
        if (blank(p.chosen) || blank(p.rejected)) {
          ++stats_->dropped_empty;
          p.skipped = "empty chosen or rejected reply";
        } else if (p.chosen == p.rejected) {
          ++stats_->dropped_identical;
          p.skipped = "chosen == rejected";
        }
        if (!p.skipped.empty() && !opts_.keep_dropped) continue;
        if (!opts_.keep_raw) p.raw = nullptr;
        out_.push_back(std::move(p));
      }
    } catch (const FormatError& e) {
      bad(where, e.what(), &r, line);
    }
  }

  // keep_dropped: a placeholder pair carrying the row and why it cannot be scored.
  void keep_dropped(const json& r, size_t line, const std::string& why) {
    if (!opts_.keep_dropped) return;
    PrefPair p;
    p.raw = r.is_object() ? r : json::object();
    if (r.is_object() && r.contains("id") && r["id"].is_string()) p.id = r["id"].get<std::string>();
    else p.id = file_name(path_) + ":" + std::to_string(line);
    p.file = path_;
    p.line = line;
    p.skipped = why;
    out_.push_back(std::move(p));
  }

  void bad(const std::string& where, const std::string& problem, const json* r = nullptr, size_t line = 0) {
    std::string msg = path_ + ":" + where + ": " + clip_text(problem, 300);
    if (!opts_.skip_bad) throw FormatError(msg);
    ++stats_->skipped_bad;
    if (line > 0) keep_dropped(r ? *r : json::object(), line, "malformed row: " + clip_text(problem, 200));
    if (stats_->first_errors.size() < 10) stats_->first_errors.push_back(msg);
  }

  std::vector<PrefPair> finish() {
    stats_->kept = static_cast<size_t>(
        std::count_if(out_.begin(), out_.end(), [](const PrefPair& p) { return p.skipped.empty(); }));
    stats_->format = format_;
    return std::move(out_);
  }

 private:
  std::string path_;
  ReadOptions opts_;
  ReadStats* stats_;
  std::string format_;
  std::vector<PrefPair> out_;
};

}  // namespace

std::string no_usable_pairs_message(const ReadStats& t, const std::string& where) {
  std::string m = "no usable pairs in " + where + ": " + std::to_string(t.rows) + " rows read";
  std::vector<std::string> why;
  auto add = [&](size_t n, const std::string& what) {
    if (n) why.push_back(std::to_string(n) + " " + what);
  };
  add(t.skipped_bad, "malformed rows skipped (--skip-bad)");
  add(t.dropped_identical, "pairs dropped as chosen == rejected");
  add(t.dropped_empty, "pairs dropped for an empty chosen or rejected reply");
  add(t.dropped_mismatched, "rows dropped because chosen and rejected transcripts disagree before the reply");
  if (t.rows == 0) why.push_back("the input has no rows");
  for (size_t i = 0; i < why.size(); ++i) m += (i == 0 ? "; " : ", ") + why[i];
  if (!t.first_errors.empty()) m += "; first problem: " + clip_text(t.first_errors.front(), 200);
  return m;
}

void add_read_stats(ReadStats* a, const ReadStats& b) {
  a->rows += b.rows;
  a->kept += b.kept;
  a->skipped_bad += b.skipped_bad;
  a->dropped_identical += b.dropped_identical;
  a->dropped_empty += b.dropped_empty;
  a->dropped_mismatched += b.dropped_mismatched;
  for (const auto& e : b.first_errors)
    if (a->first_errors.size() < 10) a->first_errors.push_back(e);
  if (a->format.empty()) a->format = b.format;
  else if (!b.format.empty() && a->format.find(b.format) == std::string::npos) a->format += "," + b.format;
}

const std::vector<std::string>& pref_formats() {
  static const std::vector<std::string> f = {"normalized", "trl", "hh", "rm-bench", "rewardbench"};
  return f;
}

std::vector<PrefPair> read_prefs(const std::string& path, const std::string& format, bool skip_bad,
                                 ReadStats* stats) {
  ReadOptions o;
  o.format = format;
  o.skip_bad = skip_bad;
  return read_prefs(path, o, stats);
}

std::vector<PrefPair> read_prefs(const std::string& path, const ReadOptions& opts,
                                 ReadStats* stats) {
  ReadStats local;
  ReadStats* st = stats ? stats : &local;
  *st = ReadStats{};
  if (!path_exists(path)) throw IoError(path + ": no such file");
  if (is_directory(path)) throw IoError(path + ": is a directory, expected a preference file");
  Collector c(path, opts, st);
  if (ends_with(path, ".json") || ends_with(path, ".json.gz")) {
    std::string text;
    for_each_line(path, [&](const std::string& l, size_t) {
      text += l;
      text += '\n';
      return true;
    });
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      // Re-parse with exceptions for the position in nlohmann's message.
      try {
        doc = json::parse(text);
      } catch (const json::exception& e) {
        throw FormatError(path + ": invalid JSON: " + clip_text(e.what()));
      }
    }
    if (!doc.is_array())
      throw FormatError(path + ": expected a JSON array of preference rows, got a JSON " +
                        std::string(doc.type_name()));
    for (size_t i = 0; i < doc.size(); ++i)
      c.row(doc[i], i + 1, "element " + std::to_string(i + 1));
  } else {
    for_each_line(path, [&](const std::string& l, size_t line_no) {
      if (blank(l)) return true;
      json r = json::parse(l, nullptr, false);
      if (r.is_discarded()) {
        ++st->rows;
        std::string why;
        try {
          json again = json::parse(l);
          (void)again;
        } catch (const json::exception& e) {
          why = clip_text(e.what());
        }
        c.bad(std::to_string(line_no), "invalid JSON: " + why, nullptr, line_no);
        return true;
      }
      c.row(r, line_no, std::to_string(line_no));
      return true;
    });
  }
  return c.finish();
}

}  // namespace rmkit::data
