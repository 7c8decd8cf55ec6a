// rmkit basemodel presence: the data-presence score (length-normalised log-likelihood of each
// document's first N tokens) per document and averaged per group, as feature columns.
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cmd_basemodel.h"
#include "rmkit/basemodel/presence.h"
#include "rmkit/basemodel/table.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/runtime.h"

namespace rmkit::cli {
namespace {

std::string json_text(const nlohmann::json& v, const std::string& where, const std::string& field) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  throw FormatError(where + ": field '" + field + "': expected a string");
}

int run_presence(const Options& o) {
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  const std::string corpus = o.str("corpus"), field = o.str("field");
  const std::string group = o.has("group") ? o.str("group") : "";
  std::vector<std::string> texts, groups;
  for_each_line(corpus, [&](const std::string& line, size_t no) {
    if (line.find_first_not_of(" \t") == std::string::npos) return true;
    const std::string where = corpus + ":" + std::to_string(no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw FormatError(where + ": not a JSON object (" + std::string(e.what()) + ")");
    }
    if (!j.is_object()) throw FormatError(where + ": expected a JSON object");
    if (!j.contains(field)) throw FormatError(where + ": missing field '" + field + "'");
    texts.push_back(json_text(j[field], where, field));
    if (!group.empty()) {
      if (!j.contains(group)) throw FormatError(where + ": missing group field '" + group + "'");
      groups.push_back(json_text(j[group], where, group));
    }
    return true;
  });
  if (texts.empty()) throw UsageError(corpus + ": no documents");
  auto lm = model::load_pretrained(o.str("model"), o.has("tokenizer") ? o.str("tokenizer") : "");
  if (!lm.tokenizer) throw UsageError("no tokenizer found for " + o.str("model") + " (give --tokenizer)");
  basemodel::PresenceOptions po;
  po.max_tokens = o.integer("max-tokens");
  po.batch_size = o.integer("batch-size");
  if (po.max_tokens < 1) throw UsageError("--max-tokens must be >= 1");
  auto r = basemodel::presence_scores(*lm.model, *lm.tokenizer, texts, groups, po);
  const std::string out = o.str("output");
  make_dirs(out);
  std::string rows;
  for (const auto& d : r.docs) {
    nlohmann::json j = {{"index", d.index}, {"tokens", d.tokens}, {"truncated", d.truncated}};
    if (!group.empty()) j["group"] = d.group;
    j["presence"] = d.tokens > 0 ? nlohmann::json(d.presence) : nlohmann::json(nullptr);
    rows += j.dump() + "\n";
  }
  write_file_atomic(join_path(out, "presence.jsonl"), rows);
  // one table row: model, presence, presence_<group>...
  basemodel::Table t;
  t.comments.push_back("rmkit basemodel presence: mean length-normalised log-likelihood of the first " +
                       std::to_string(r.max_tokens) + " tokens of " + corpus);
  t.columns = {"model", "presence"};
  std::vector<std::string> row = {o.has("name") ? o.str("name") : file_name(o.str("model")), std::to_string(r.mean)};
  if (!group.empty())
    for (const auto& [g, v] : r.groups) {
      t.columns.push_back("presence_" + g);
      std::ostringstream s;
      s.precision(10);
      s << v.first;
      row.push_back(s.str());
    }
  t.cells.push_back(row);
  write_file_atomic(join_path(out, "features.csv"), basemodel::to_csv(t));
  merge_into_table(o, t, out);
  std::cout << "documents " << r.scored << " scored, " << r.skipped << " skipped (fewer than 2 tokens); N = "
            << r.max_tokens << "; mean presence " << r.mean << "\n";
  for (const auto& [g, v] : r.groups)
    if (!group.empty()) std::cout << "  " << g << ": " << v.first << " (" << v.second << " documents)\n";
  std::cout << "wrote " << join_path(out, "presence.jsonl") << " and " << join_path(out, "features.csv") << "\n";
  return 0;
}

BasemodelVerb reg({"presence",
                   "data-presence score: length-normalised log-likelihood of each document's first N tokens",
                   {
                       {"model", OptKind::String, "", "base LM: HF directory or llama2.c .bin", true},
                       {"tokenizer", OptKind::String, "", "tokenizer path (needed for llama2.c .bin)"},
                       {"corpus", OptKind::String, "", "documents, JSONL (.gz ok)", true},
                       {"field", OptKind::String, "text", "JSON field holding the text"},
                       {"group", OptKind::String, "", "JSON field to average by (e.g. source): one feature column per value"},
                       {"max-tokens", OptKind::Int, "2048", "N: score the first N tokens (capped at the model's context - 1)"},
                       {"batch-size", OptKind::Int, "8", "documents per forward pass"},
                       {"name", OptKind::String, "", "model name in features.csv (default: the model's file name)"},
                       {"table", OptKind::String, "", "model table (CSV/JSONL, name column `model`) to join the new columns into: OUT/table.csv"},
                       {"output", OptKind::String, "", "output directory: presence.jsonl (per document), features.csv (one table row)", true},
                       {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
                   },
                   {},
                   run_presence,
                   true});

}  // namespace
}  // namespace rmkit::cli
