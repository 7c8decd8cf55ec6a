// The elastic-net selector of arXiv 2505.10775, with a fixed, reproducible pipeline (torch-free):
// z-score the features (fitting rows) -> PolynomialFeatures(degree, no bias) -> z-score the expanded
// columns (fitting rows) -> elastic net with intercept on the raw target. Hyper-parameters come from
// K-fold cross-validation over a grid (lowest mean over folds of the fold MSE; ties go to the first
// grid point: degree ascending, alpha descending, l1_ratio ascending). Every scaler is fit on the
// training rows of the fold only. Nested CV (hyper-parameters chosen inside each outer fold) gives
// honest out-of-fold predictions, for the selector and for the best single feature chosen the same
// way.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rmkit/basemodel/elastic_net.h"

namespace rmkit::basemodel {

struct GridPoint {
  int degree = 1;
  double alpha = 0.1, l1_ratio = 0.5;
};
// degree {1,2,3} x alpha {0.1, 0.01, 0.001, 0.0001} x l1_ratio {0, 0.25, 0.5, 0.75, 1}, in tie order.
std::vector<GridPoint> default_grid();
// The same product over the given lists, sorted into tie order.
std::vector<GridPoint> make_grid(std::vector<int> degrees, std::vector<double> alphas, std::vector<double> l1_ratios);

struct SelectorModel {
  GridPoint hp;
  Standardizer input_scaler;
  std::vector<std::vector<size_t>> terms;
  Standardizer term_scaler;
  EnetFit fit;
  std::vector<double> predict(const Matrix& X) const;
};

SelectorModel fit_selector(const Matrix& X, const std::vector<double>& y, const GridPoint& hp,
                           const EnetOptions& opts = {});

// sklearn KFold(n_splits=k, shuffle=True)-style folds: the rows are shuffled with Rng(seed) and cut
// into k contiguous chunks, the first n % k one row longer. k >= n gives leave-one-out (fold = row).
std::vector<int> kfold_assignment(size_t n, int k, uint64_t seed);

struct CvResult {
  std::vector<double> mse;      // per grid point: mean over folds of the fold's mean squared error
  size_t best = 0;
  int not_converged = 0;        // fits that hit max_sweeps
};
// Rows with fold[i] == f form the test set of fold f (folds are the distinct values).
CvResult grid_cv(const Matrix& X, const std::vector<double>& y, const std::vector<int>& fold,
                 const std::vector<GridPoint>& grid, const EnetOptions& opts = {});

struct SingleFeatureModel {
  size_t feature = 0;
  double slope = 0, intercept = 0;  // least-squares line target ~ feature on the fitting rows
};
// The feature with the highest mean top-k coverage over k = k_min..k_max on (X, y) (ties: first).
SingleFeatureModel best_single_feature(const Matrix& X, const std::vector<double>& y, size_t k_min, size_t k_max);

struct NestedCvResult {
  std::vector<double> selector_pred;     // out-of-fold prediction of every row
  std::vector<double> single_pred;
  std::vector<int> outer_folds;          // fold ids in order
  std::vector<GridPoint> chosen;         // per outer fold
  std::vector<size_t> chosen_single;     // per outer fold (feature index)
  std::vector<SelectorModel> models;     // per outer fold (for candidate intervals)
  int not_converged = 0;
};
// Outer folds from `outer_fold`; inner folds: kfold_assignment(n_train, min(inner_k, n_train),
// seed + 1 + outer fold position). Outer folds run on `threads` workers (0 = hardware threads);
// the result is the same for any thread count.
NestedCvResult nested_cv(const Matrix& X, const std::vector<double>& y, const std::vector<int>& outer_fold,
                         int inner_k, uint64_t seed, const std::vector<GridPoint>& grid, size_t k_min,
                         size_t k_max, const EnetOptions& opts = {}, int threads = 1);

double mean_absolute_error(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace rmkit::basemodel
