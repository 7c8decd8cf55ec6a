// `rmkit basemodel analyze`: correlations, top-k coverage, the elastic-net selector with CV and
// nested CV, leave-one-family-out, PCA and the candidate shortlist, as one JSON document
// (basemodel.json; keys documented in docs/basemodel.md). Torch-free.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/basemodel/selector.h"
#include "rmkit/basemodel/table.h"

namespace rmkit::basemodel {

struct AnalyzeOptions {
  std::string name_column = "model";
  std::vector<std::string> targets;       // required
  std::vector<std::string> features;      // empty: every numeric column but name/targets/family
  std::string family_column = "family";   // leave-one-family-out when this column exists
  // How missing feature cells among the rows with a target are handled:
  //   "features": drop every feature with a missing cell (from the selector, PCA, best single);
  //   "rows": drop every row with a missing cell in a selected feature.
  // Correlations and coverage always use the rows where both the feature and the target exist.
  std::string missing = "features";
  int folds = 10;                         // K of K-fold (>= number of rows: leave-one-out)
  bool loo = false;
  std::string folds_file;                 // CSV model,fold (overrides folds / loo)
  uint64_t seed = 0;
  int bootstrap = 1000;                   // resamples for the 95% intervals (0 = none)
  size_t k_min = 5, k_max = 10;           // range of the mean coverage
  std::vector<GridPoint> grid = default_grid();
  bool nested = true;                     // nested CV (and leave-one-family-out)
  int threads = 0;                        // workers for the outer folds (0 = hardware threads)
  EnetOptions enet;
};

// Throws UsageError for unknown columns / bad options and FormatError (file:line:column) for bad
// cells. `log` receives progress lines.
nlohmann::json analyze_table(const Table& table, const AnalyzeOptions& opts,
                             const std::function<void(const std::string&)>& log = {});

// Reads a folds file: CSV with columns model,fold (fold = any integer). Returns fold per name.
std::vector<std::pair<std::string, int>> read_folds_file(const std::string& path);

}  // namespace rmkit::basemodel
