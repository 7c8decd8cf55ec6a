// rmkit basemodel analyze: correlations, top-k coverage, the elastic-net selector with nested CV,
// PCA and the candidate shortlist -> OUT/basemodel.json + OUT/report.html (see docs/basemodel.md).
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "cmd_basemodel.h"
#include "rmkit/basemodel/analyze.h"
#include "rmkit/basemodel/report.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::cli {
namespace {

std::vector<double> numbers(const Options& o, const std::string& key) {
  std::vector<double> v;
  for (const auto& s : split_list(o.list(key))) {
    char* e = nullptr;
    const double x = std::strtod(s.c_str(), &e);
    if (e == s.c_str() || *e) throw UsageError("--" + key + ": expected numbers, got '" + s + "'");
    v.push_back(x);
  }
  if (v.empty()) throw UsageError("--" + key + ": empty list");
  return v;
}

int run_analyze(const Options& o) {
  std::vector<basemodel::Table> tables;
  for (const auto& p : o.list("table")) tables.push_back(basemodel::read_table(p));
  basemodel::Table t = tables.size() == 1 ? tables[0] : basemodel::merge_tables(tables, o.str("name-column"), nullptr);
  if (tables.size() > 1) t.source = "merged table";
  basemodel::AnalyzeOptions a;
  a.name_column = o.str("name-column");
  a.targets = split_list(o.list("target"));
  a.features = split_list(o.list("features"));
  a.family_column = o.str("family-column");
  a.missing = o.choice("missing", {"features", "rows"});
  // --folds K, or --folds FILE (CSV model,fold; same as --folds-file)
  const std::string folds = o.str("folds");
  char* end = nullptr;
  const long k = std::strtol(folds.c_str(), &end, 10);
  if (end != folds.c_str() && *end == '\0') {
    if (k < 2) throw UsageError("--folds: expected K >= 2 or a CSV file model,fold, got '" + folds + "'");
    a.folds = static_cast<int>(k);
  } else {
    a.folds_file = folds;
  }
  a.loo = o.flag("loo");
  if (o.has("folds-file")) a.folds_file = o.str("folds-file");
  a.seed = static_cast<uint64_t>(o.integer("seed"));
  a.bootstrap = static_cast<int>(o.integer("bootstrap"));
  a.k_min = static_cast<size_t>(o.integer("k-min"));
  a.k_max = static_cast<size_t>(o.integer("k-max"));
  if (a.k_min < 1 || a.k_max < a.k_min) throw UsageError("--k-min/--k-max: expected 1 <= k-min <= k-max");
  std::vector<int> degrees;
  for (double d : numbers(o, "degrees")) {
    if (d < 1 || d > 4 || d != std::floor(d)) throw UsageError("--degrees: expected integers 1..4");
    degrees.push_back(static_cast<int>(d));
  }
  auto alphas = numbers(o, "alphas"), l1 = numbers(o, "l1-ratios");
  for (double x : alphas)
    if (!(x > 0)) throw UsageError("--alphas: expected positive values");
  for (double x : l1)
    if (x < 0 || x > 1) throw UsageError("--l1-ratios: expected values in [0, 1]");
  a.grid = basemodel::make_grid(degrees, alphas, l1);
  a.nested = !o.flag("no-nested");
  a.threads = static_cast<int>(o.integer("threads"));
  const std::string out = o.str("output");
  make_dirs(out);
  auto result = basemodel::analyze_table(t, a, [](const std::string& s) { std::cerr << s << "\n"; });
  std::string sources;
  for (const auto& p : o.list("table")) sources += (sources.empty() ? "" : " + ") + p;
  result["source"] = sources;
  write_file_atomic(join_path(out, "basemodel.json"), result.dump(1) + "\n");
  basemodel::write_basemodel_report(join_path(out, "report.html"), result, sources);
  for (const auto& tj : result["targets"]) {
    const std::string tn = tj.get<std::string>();
    const auto& e = result["elastic_net"][tn];
    std::cout << tn << ": best single " << result["best_single"][tn]["feature"].get<std::string>() << " (mean C@"
              << a.k_min << "-" << a.k_max << " " << result["best_single"][tn]["mean_coverage"] << "); elastic net degree "
              << e["degree"] << " alpha " << e["alpha"] << " l1_ratio " << e["l1_ratio"] << ", in-sample mean C "
              << e["mean_coverage"] << " MAE " << e["in_sample_mae"];
    if (result["nested_cv"].contains(tn))
      std::cout << "; nested CV mean C " << result["nested_cv"][tn]["selector"]["mean_coverage"] << " MAE "
                << result["nested_cv"][tn]["selector"]["mae"];
    std::cout << "\n";
  }
  std::cout << "wrote " << join_path(out, "basemodel.json") << " and " << join_path(out, "report.html") << "\n";
  return 0;
}

BasemodelVerb reg({"analyze",
                   "correlations, top-k coverage, elastic-net selector with nested CV, PCA, candidate shortlist",
                   {
                       {"table", OptKind::String, "", "model table(s), CSV or JSONL (several are joined on the name)", true, true},
                       {"target", OptKind::String, "", "target column(s), e.g. score (comma-separated or repeated)", true, true},
                       {"features", OptKind::String, "", "feature columns (default: every numeric non-target column)", false, true},
                       {"output", OptKind::String, "", "output directory for basemodel.json and report.html", true},
                       {"name-column", OptKind::String, "model", "column holding the model name"},
                       {"family-column", OptKind::String, "family", "leave-one-family-out split when this column exists"},
                       {"missing", OptKind::String, "features", "missing feature cells: features (drop the feature) | rows (drop the row)"},
                       {"folds", OptKind::String, "10", "K of the seeded K-fold CV (outer and inner), or a CSV file model,fold of outer folds"},
                       {"loo", OptKind::Flag, "", "leave-one-out instead of K-fold (outer)"},
                       {"folds-file", OptKind::String, "", "CSV model,fold giving the outer folds"},
                       {"seed", OptKind::Int, "0", "seed of fold shuffles and bootstrap resamples"},
                       {"bootstrap", OptKind::Int, "1000", "bootstrap resamples for the 95% intervals (0 = none)"},
                       {"k-min", OptKind::Int, "5", "mean coverage over k = k-min..k-max"},
                       {"k-max", OptKind::Int, "10", "mean coverage over k = k-min..k-max"},
                       {"degrees", OptKind::String, "1,2,3", "polynomial degrees of the grid", false, true},
                       {"alphas", OptKind::String, "0.1,0.01,0.001,0.0001", "elastic-net alphas of the grid", false, true},
                       {"l1-ratios", OptKind::String, "0,0.25,0.5,0.75,1", "l1 ratios of the grid", false, true},
                       {"no-nested", OptKind::Flag, "", "skip nested CV and leave-one-family-out"},
                       {"threads", OptKind::Int, "0", "workers for the outer folds (0 = hardware threads; results do not depend on it)"},
                   },
                   {},
                   run_analyze,
                   true});

}  // namespace
}  // namespace rmkit::cli
