#include "rmkit/distill/distill_item.h"

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/data/prompt_rows.h"
#include "rmkit/data/readers.h"

namespace rmkit::distill {

using json = nlohmann::json;

json DistillItem::to_json() const {
  json p = json::array();
  for (const auto& m : prompt) p.push_back({{"role", m.role}, {"content", m.content}});
  json j = {{"index", index}, {"id", id}, {"prompt", p}};
  if (!dropped.empty()) {
    j["dropped"] = dropped;
    if (!dropped_detail.empty()) j["dropped_detail"] = dropped_detail;
  }
  if (!candidates.empty()) j["candidates"] = candidates;
  if (!a.empty() || !b.empty()) j["pair"] = {a, b};
  if (!judge_scores.empty()) {
    j["judge_scores"] = judge_scores;
    j["score_a"] = score_a;
    j["score_b"] = score_b;
    if (regraded) j["regraded"] = true;
  }
  if (!chosen.empty()) {
    j["chosen"] = chosen;
    j["rejected"] = rejected;
    j["score_chosen"] = score_chosen;
    j["score_rejected"] = score_rejected;
  }
  if (!teacher_response.empty()) j["teacher_response"] = teacher_response;
  if (!refine_reply.empty()) j["refine_reply"] = refine_reply;
  if (!refined.empty()) {
    j["refined"] = refined;
    j["edit_ratio"] = edit_ratio;
  }
  if (score_refined != 0) j["score_refined"] = score_refined;
  return j;
}

namespace {

std::string str_field(const json& row, const char* key) {
  auto it = row.find(key);
  return it != row.end() && it->is_string() ? it->get<std::string>() : "";
}

bool first_row_is_pair(const std::string& path) {
  bool pair = false, seen = false;
  for_each_line(path, [&](const std::string& line, size_t) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return true;
    auto j = json::parse(line, nullptr, false);
    if (j.is_array()) {  // a .json array file: only the pair readers take those
      pair = true;
    } else {
      pair = j.is_object() && j.contains("chosen");
    }
    seen = true;
    return false;
  });
  if (!seen) throw FormatError(path + ": no rows");
  return pair;
}

}  // namespace

std::vector<DistillItem> read_distill_input(const std::string& path, int64_t limit) {
  if (!path_exists(path)) throw IoError("--input " + path + ": no such file");
  std::vector<DistillItem> items;
  if (first_row_is_pair(path)) {
    data::ReadStats st;
    auto pairs = data::read_prefs(path, "auto", false, &st);
    if (pairs.empty()) throw FormatError(data::no_usable_pairs_message(st, path));
    for (auto& p : pairs) {
      if (limit > 0 && static_cast<int64_t>(items.size()) >= limit) break;
      DistillItem it;
      it.index = items.size();
      it.id = p.id;
      it.source = p.source;
      it.category = p.category;
      it.subset = p.subset;
      it.prompt = std::move(p.prompt);
      it.labelled = true;
      it.label_chosen = std::move(p.chosen);
      it.label_rejected = std::move(p.rejected);
      items.push_back(std::move(it));
    }
    return items;
  }
  data::for_each_prompt_row(path, [&](json& j, text::Conversation& prompt, const std::string&, size_t no) {
    if (limit > 0 && static_cast<int64_t>(items.size()) >= limit) return false;
    DistillItem it;
    it.prompt = std::move(prompt);
    it.index = items.size();
    it.id = str_field(j, "id");
    if (it.id.empty()) it.id = file_name(path) + ":" + std::to_string(no);
    it.source = str_field(j, "source");
    it.category = str_field(j, "category");
    it.subset = str_field(j, "subset");
    items.push_back(std::move(it));
    return true;
  });
  if (items.empty()) throw FormatError(path + ": no rows");
  return items;
}

}  // namespace rmkit::distill
