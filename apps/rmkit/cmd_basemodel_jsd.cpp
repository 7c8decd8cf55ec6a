// rmkit basemodel jsd A.jsonl B.jsonl: Jensen-Shannon distance between two models' score
// distributions (e.g. two presence.jsonl files), with the binning stated in the output.
#include <cmath>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cmd_basemodel.h"
#include "rmkit/basemodel/divergence.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::cli {
namespace {

std::vector<double> read_scores(const std::string& path, const std::string& field, size_t* skipped) {
  std::vector<double> v;
  for_each_line(path, [&](const std::string& line, size_t no) {
    if (line.find_first_not_of(" \t") == std::string::npos) return true;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw FormatError(path + ":" + std::to_string(no) + ": not a JSON object (" + std::string(e.what()) + ")");
    }
    if (!j.is_object() || !j.contains(field)) throw FormatError(path + ":" + std::to_string(no) + ": missing field '" + field + "'");
    if (j[field].is_null()) {
      ++*skipped;
      return true;
    }
    if (!j[field].is_number()) throw FormatError(path + ":" + std::to_string(no) + ": field '" + field + "': expected a number");
    v.push_back(j[field].get<double>());
    return true;
  });
  return v;
}

int run_jsd(const Options& o) {
  if (!o.has("a") || !o.has("b")) throw UsageError("give two score files: rmkit basemodel jsd A.jsonl B.jsonl");
  const std::vector<std::string> files = {o.str("a"), o.str("b")};
  size_t sa = 0, sb = 0;
  auto a = read_scores(files[0], o.str("field"), &sa), b = read_scores(files[1], o.str("field"), &sb);
  auto r = basemodel::jensen_shannon(a, b, static_cast<int>(o.integer("bins")));
  nlohmann::json j = {{"a", files[0]}, {"b", files[1]}, {"field", o.str("field")}, {"n_a", a.size()}, {"n_b", b.size()},
                      {"null_skipped", {sa, sb}},
                      {"binning", "equal-width bins over the pooled range [min, max] of both samples"},
                      {"bins", r.bins}, {"range", {r.low, r.high}}, {"log_base", 2},
                      {"js_divergence", r.divergence}, {"js_distance", r.distance},
                      {"hist_a", r.p}, {"hist_b", r.q}};
  if (o.has("output")) write_file_atomic(o.str("output"), j.dump(1) + "\n");
  std::cout << j.dump(1) << "\n";
  return 0;
}

BasemodelVerb reg({"jsd",
                   "Jensen-Shannon distance between two score distributions (histogram binning stated)",
                   {
                       {"a", OptKind::String, "", "first JSONL score file (e.g. presence.jsonl of model A)"},
                       {"b", OptKind::String, "", "second JSONL score file"},
                       {"field", OptKind::String, "presence", "numeric field to compare (null values are skipped)"},
                       {"bins", OptKind::Int, "20", "equal-width bins over the pooled range"},
                       {"output", OptKind::String, "", "also write the result JSON here"},
                   },
                   {"a", "b"},
                   run_jsd});

}  // namespace
}  // namespace rmkit::cli
