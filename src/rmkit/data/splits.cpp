#include "rmkit/data/splits.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::data {
namespace {

Split materialize(const std::vector<PrefPair>& pairs, const SplitIndices& s) {
  Split out;
  out.train.reserve(s.train.size());
  out.val.reserve(s.val.size());
  for (size_t i : s.train) out.train.push_back(pairs[i]);
  for (size_t i : s.val) out.val.push_back(pairs[i]);
  return out;
}

}  // namespace

std::string prompt_key(const PrefPair& p) {
  std::string k;
  for (const auto& m : p.prompt) {
    k += m.role;
    k += '\x1f';
    k += m.content;
    k += '\x1e';
  }
  return k;
}

namespace {

// FNV-1a chained over the strings `fields(pair, mix)` mixes for every pair, in order, closed with
// the pair count.
template <class Fields>
std::string chained_digest(const std::vector<PrefPair>& pairs, Fields fields) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const std::string& s) { h = std::stoull(fnv1a_hex(s + '\x1d', h), nullptr, 16); };
  for (const auto& p : pairs) fields(p, mix);
  return fnv1a_hex(std::to_string(pairs.size()), h);
}

}  // namespace

std::string data_hash(const std::vector<PrefPair>& pairs) {
  return chained_digest(pairs, [](const PrefPair& p, auto& mix) {
    mix(p.id);
    mix(prompt_key(p));
    mix(p.chosen);
    mix(p.rejected);
  });
}

std::string annotation_hash(const std::vector<PrefPair>& pairs) {
  auto num = [](const std::optional<double>& v) { return v ? nlohmann::json(*v).dump() : std::string("-"); };
  return chained_digest(pairs, [&](const PrefPair& p, auto& mix) {
    mix(num(p.score_chosen) + "," + num(p.score_rejected) + "," + num(p.margin));
    mix(nlohmann::json(p.attributes).dump());
    mix(p.teacher_response);
  });
}

SplitIndices split_indices_by_fraction(const std::vector<PrefPair>& pairs, double val_fraction,
                                       uint64_t seed) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    throw UsageError("validation fraction must be in [0, 1), got " + std::to_string(val_fraction));
  // group -> member positions
  std::unordered_map<std::string, std::vector<size_t>> groups;
  std::vector<std::string> order;
  for (size_t i = 0; i < pairs.size(); ++i) {
    std::string k = prompt_key(pairs[i]);
    auto& g = groups[k];
    if (g.empty()) order.push_back(k);
    g.push_back(i);
  }
  std::string seed_s = std::to_string(seed) + ":";
  std::vector<std::pair<std::string, const std::string*>> ranked;
  ranked.reserve(order.size());
  for (const auto& k : order) ranked.push_back({fnv1a_hex(seed_s + k), &k});
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : *a.second < *b.second;
  });
  size_t target = static_cast<size_t>(std::llround(val_fraction * pairs.size()));
  std::vector<char> in_val(pairs.size(), 0);
  size_t n_val = 0;
  for (const auto& r : ranked) {
    if (n_val >= target) break;
    for (size_t i : groups[*r.second]) in_val[i] = 1;
    n_val += groups[*r.second].size();
  }
  SplitIndices s;
  for (size_t i = 0; i < pairs.size(); ++i) (in_val[i] ? s.val : s.train).push_back(i);
  return s;
}

Split split_by_fraction(const std::vector<PrefPair>& pairs, double val_fraction, uint64_t seed) {
  return materialize(pairs, split_indices_by_fraction(pairs, val_fraction, seed));
}

std::string field_value(const PrefPair& p, const std::string& field) {
  if (field == "id") return p.id;
  if (field == "category") return p.category;
  if (field == "subset") return p.subset;
  if (field == "source") return p.source;
  if (field.rfind("meta.", 0) == 0 && field.size() > 5) {
    std::string key = field.substr(5);
    if (!p.raw.is_object()) return "";
    for (const char* parent : {"meta", "metadata"}) {
      auto m = p.raw.find(parent);
      if (m == p.raw.end() || !m->is_object()) continue;
      auto v = m->find(key);
      if (v == m->end() || v->is_null()) continue;
      return v->is_string() ? v->get<std::string>() : v->dump();
    }
    return "";
  }
  throw UsageError("unknown split field '" + field +
                   "' (expected id, category, subset, source or meta.NAME)");
}

SplitIndices split_indices_by_field(const std::vector<PrefPair>& pairs, const std::string& field,
                                    const std::string& value) {
  SplitIndices s;
  if (pairs.empty()) (void)field_value(PrefPair{}, field);  // still validate the field name
  for (size_t i = 0; i < pairs.size(); ++i)
    (field_value(pairs[i], field) == value ? s.val : s.train).push_back(i);
  return s;
}

Split split_by_field(const std::vector<PrefPair>& pairs, const std::string& field,
                     const std::string& value) {
  return materialize(pairs, split_indices_by_field(pairs, field, value));
}

}  // namespace rmkit::data
