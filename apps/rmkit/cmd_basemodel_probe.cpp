// rmkit basemodel probe: per candidate base model, a short reward-model training (small lr sweep,
// same budget and data) and the zero-shot implicit preference accuracy of the base LM; writes the
// figures as feature columns of a model table and ranks the candidates.
#include <algorithm>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cmd_basemodel.h"
#include "rmkit/basemodel/probe.h"
#include "rmkit/basemodel/table.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/runtime.h"

namespace rmkit::cli {
namespace {

basemodel::ProbeCandidate parse_candidate(const std::string& s) {
  const auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
    throw UsageError("--candidate: expected NAME=PATH or NAME=PATH,TOKENIZER, got '" + s + "'");
  basemodel::ProbeCandidate c;
  c.name = s.substr(0, eq);
  std::string rest = s.substr(eq + 1);
  const auto comma = rest.find(',');
  c.path = rest.substr(0, comma);
  if (comma != std::string::npos) c.tokenizer = rest.substr(comma + 1);
  if (c.name.find_first_of("/\\ ") != std::string::npos) throw UsageError("--candidate: NAME may not contain '/', '\\' or spaces: '" + c.name + "'");
  return c;
}

std::string num(double v) {
  std::ostringstream o;
  o.precision(8);
  o << v;
  return o.str();
}

int run_probe(const Options& o) {
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  std::vector<basemodel::ProbeCandidate> cands;
  for (const auto& s : o.list("candidate")) cands.push_back(parse_candidate(s));
  for (size_t i = 0; i < cands.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (cands[i].name == cands[j].name) throw UsageError("--candidate: duplicate name '" + cands[i].name + "'");
  basemodel::ProbeOptions po;
  po.data = o.list("data");
  po.val = o.list("val");
  po.steps = o.integer("steps");
  po.batch_size = o.integer("batch-size");
  po.max_length = o.integer("max-length");
  po.max_val_pairs = static_cast<size_t>(std::max<long long>(0, o.integer("max-val-pairs")));
  po.seed = static_cast<uint64_t>(o.integer("seed"));
  po.chat_template = o.str("chat-template");
  po.zero_shot = !o.flag("no-zero-shot");
  po.lrs.clear();
  for (const auto& s : split_list(o.list("lr"))) {
    char* e = nullptr;
    const double v = std::strtod(s.c_str(), &e);
    if (e == s.c_str() || *e || !(v > 0)) throw UsageError("--lr: expected positive numbers, got '" + s + "'");
    po.lrs.push_back(v);
  }
  if (po.steps < 1) throw UsageError("--steps must be >= 1");
  const std::string out = o.str("output");
  make_dirs(out);
  po.work_dir = join_path(out, "runs");
  std::vector<basemodel::ProbeResult> results;
  for (const auto& c : cands)
    results.push_back(basemodel::run_probe(c, po, [](const std::string& s) { std::cerr << s << "\n"; }));
  // ranking: probe accuracy, then zero-shot accuracy, then the order given
  std::vector<size_t> order(results.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (results[a].probe_accuracy != results[b].probe_accuracy) return results[a].probe_accuracy > results[b].probe_accuracy;
    return results[a].zero_shot_accuracy > results[b].zero_shot_accuracy;
  });
  basemodel::Table t;
  t.comments.push_back("rmkit basemodel probe: " + std::to_string(po.steps) + " steps, batch " +
                       std::to_string(po.batch_size) + ", best lr of the sweep on the validation data");
  t.columns = {"model", "probe_accuracy", "probe_best_lr", "zero_shot_accuracy", "probe_rank"};
  nlohmann::json js = nlohmann::json::array();
  for (size_t rank = 0; rank < order.size(); ++rank) {
    const auto& r = results[order[rank]];
    t.cells.push_back({r.name, num(r.probe_accuracy), num(r.best_lr),
                       r.zero_shot_accuracy >= 0 ? num(r.zero_shot_accuracy) : "", std::to_string(rank + 1)});
    nlohmann::json sweep = nlohmann::json::array();
    for (const auto& s : r.sweep)
      sweep.push_back({{"lr", s.lr}, {"val_accuracy", s.val_accuracy}, {"final_loss", s.final_loss}, {"seconds", s.seconds}});
    js.push_back({{"model", r.name}, {"path", cands[order[rank]].path}, {"rank", rank + 1},
                  {"probe_accuracy", r.probe_accuracy}, {"probe_best_lr", r.best_lr},
                  {"zero_shot_accuracy", r.zero_shot_accuracy >= 0 ? nlohmann::json(r.zero_shot_accuracy) : nlohmann::json(nullptr)},
                  {"zero_shot_pairs", r.zero_shot_pairs}, {"sweep", sweep}, {"seconds", r.seconds}});
    std::cout << rank + 1 << ". " << r.name << "  probe accuracy " << r.probe_accuracy << " (lr " << r.best_lr << ")";
    if (r.zero_shot_accuracy >= 0) std::cout << "  zero-shot " << r.zero_shot_accuracy;
    std::cout << "\n";
  }
  write_file_atomic(join_path(out, "probe.csv"), basemodel::to_csv(t));
  merge_into_table(o, t, out);
  write_file_atomic(join_path(out, "probe.json"),
                    nlohmann::json({{"settings", o.effective()}, {"candidates", js}}).dump(1) + "\n");
  std::cout << "wrote " << join_path(out, "probe.csv") << " (merge with rmkit basemodel table --merge) and "
            << join_path(out, "probe.json") << "\n";
  return 0;
}

BasemodelVerb reg({"probe",
                   "short RM training per candidate (lr sweep, same budget) + zero-shot implicit preference accuracy",
                   {
                       {"candidate", OptKind::String, "", "NAME=PATH or NAME=PATH,TOKENIZER (HF dir or llama2.c .bin)", true, true},
                       {"data", OptKind::String, "", "training preference files", true, true},
                       {"val", OptKind::String, "", "validation preference files", true, true},
                       {"steps", OptKind::Int, "50", "optimizer steps per run (the same budget for every candidate)"},
                       {"lr", OptKind::String, "1e-4,3e-4,1e-3", "learning-rate sweep", false, true},
                       {"batch-size", OptKind::Int, "8", "pairs per step"},
                       {"max-length", OptKind::Int, "256", "truncate each sequence to this many tokens"},
                       {"max-val-pairs", OptKind::Int, "0", "use at most this many validation pairs (0 = all)"},
                       {"seed", OptKind::Int, "42", "training seed (the same for every run)"},
                       {"chat-template", OptKind::String, "auto", "chat template (auto = per model)"},
                       {"no-zero-shot", OptKind::Flag, "", "skip the zero-shot implicit preference accuracy"},
                       {"table", OptKind::String, "", "model table (CSV/JSONL, name column `model`) to join the new columns into: OUT/table.csv"},
                       {"output", OptKind::String, "", "output directory: probe.csv (table rows), probe.json, runs/", true},
                       {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
                   },
                   {},
                   run_probe,
                   true});

}  // namespace
}  // namespace rmkit::cli
