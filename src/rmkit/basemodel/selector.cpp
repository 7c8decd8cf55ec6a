#include "rmkit/basemodel/selector.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <cmath>
#include <map>
#include <set>

#include "rmkit/basemodel/coverage.h"
#include "rmkit/basemodel/stats.h"
#include "rmkit/core/error.h"

namespace rmkit::basemodel {

std::vector<GridPoint> make_grid(std::vector<int> degrees, std::vector<double> alphas, std::vector<double> l1_ratios) {
  std::sort(degrees.begin(), degrees.end());
  std::sort(alphas.begin(), alphas.end(), std::greater<double>());
  std::sort(l1_ratios.begin(), l1_ratios.end());
  std::vector<GridPoint> g;
  for (int d : degrees)
    for (double a : alphas)
      for (double l : l1_ratios) g.push_back({d, a, l});
  return g;
}

std::vector<GridPoint> default_grid() {
  return make_grid({1, 2, 3}, {0.1, 0.01, 0.001, 0.0001}, {0, 0.25, 0.5, 0.75, 1});
}

std::vector<double> SelectorModel::predict(const Matrix& X) const {
  Matrix P = term_scaler.transform(expand_polynomial(input_scaler.transform(X), terms));
  std::vector<double> out(X.rows, fit.intercept);
  for (size_t i = 0; i < X.rows; ++i)
    for (size_t j = 0; j < P.cols; ++j) out[i] += P(i, j) * fit.coef[j];
  return out;
}

namespace {
// Design matrix of one degree on the fitting rows (and the transform for other rows).
struct Design {
  Standardizer in, out;
  std::vector<std::vector<size_t>> terms;
  Matrix train;
  Matrix apply(const Matrix& X) const { return out.transform(expand_polynomial(in.transform(X), terms)); }
};
Design make_design(const Matrix& Xtr, int degree) {
  Design d;
  d.in = Standardizer::fit(Xtr);
  d.terms = polynomial_terms(Xtr.cols, degree);
  Matrix P = expand_polynomial(d.in.transform(Xtr), d.terms);
  d.out = Standardizer::fit(P);
  d.train = d.out.transform(P);
  return d;
}
std::vector<size_t> rows_where(const std::vector<int>& fold, int f, bool equal) {
  std::vector<size_t> r;
  for (size_t i = 0; i < fold.size(); ++i)
    if ((fold[i] == f) == equal) r.push_back(i);
  return r;
}
std::vector<double> take(const std::vector<double>& v, const std::vector<size_t>& idx) {
  std::vector<double> o;
  for (size_t i : idx) o.push_back(v[i]);
  return o;
}
}  // namespace

SelectorModel fit_selector(const Matrix& X, const std::vector<double>& y, const GridPoint& hp, const EnetOptions& opts) {
  Design d = make_design(X, hp.degree);
  SelectorModel m;
  m.hp = hp;
  m.input_scaler = d.in;
  m.terms = d.terms;
  m.term_scaler = d.out;
  m.fit = fit_elastic_net(d.train, y, hp.alpha, hp.l1_ratio, nullptr, opts);
  return m;
}

std::vector<int> kfold_assignment(size_t n, int k, uint64_t seed) {
  std::vector<int> fold(n, 0);
  if (n == 0) return fold;
  if (k < 2) throw UsageError("cross-validation needs at least 2 folds, got " + std::to_string(k));
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), n);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  Rng rng(seed);
  rng.shuffle(order);
  size_t pos = 0;
  for (size_t f = 0; f < kk; ++f) {
    const size_t size = n / kk + (f < n % kk ? 1 : 0);
    for (size_t j = 0; j < size; ++j) fold[order[pos++]] = static_cast<int>(f);
  }
  return fold;
}

CvResult grid_cv(const Matrix& X, const std::vector<double>& y, const std::vector<int>& fold,
                 const std::vector<GridPoint>& grid, const EnetOptions& opts) {
  std::set<int> folds(fold.begin(), fold.end());
  CvResult r;
  r.mse.assign(grid.size(), 0.0);
  for (int f : folds) {
    auto tr = rows_where(fold, f, false), te = rows_where(fold, f, true);
    if (tr.empty()) throw UsageError("cross-validation fold " + std::to_string(f) + " leaves no training rows");
    const Matrix Xtr = X.take_rows(tr), Xte = X.take_rows(te);
    const auto ytr = take(y, tr), yte = take(y, te);
    std::map<int, Design> designs;
    std::map<std::pair<int, double>, std::vector<double>> warm;  // (degree, l1_ratio) -> last coef
    for (size_t g = 0; g < grid.size(); ++g) {
      const GridPoint& hp = grid[g];
      auto it = designs.find(hp.degree);
      if (it == designs.end()) it = designs.emplace(hp.degree, make_design(Xtr, hp.degree)).first;
      const Design& d = it->second;
      auto key = std::make_pair(hp.degree, hp.l1_ratio);
      auto wit = warm.find(key);
      EnetFit fit = fit_elastic_net(d.train, ytr, hp.alpha, hp.l1_ratio, wit == warm.end() ? nullptr : &wit->second, opts);
      if (!fit.converged) ++r.not_converged;
      warm[key] = fit.coef;
      const Matrix P = d.apply(Xte);
      double se = 0;
      for (size_t i = 0; i < te.size(); ++i) {
        double p = fit.intercept;
        for (size_t j = 0; j < P.cols; ++j) p += P(i, j) * fit.coef[j];
        se += (p - yte[i]) * (p - yte[i]);
      }
      r.mse[g] += se / static_cast<double>(te.size());
    }
  }
  for (double& m : r.mse) m /= static_cast<double>(folds.size());
  for (size_t g = 1; g < grid.size(); ++g)
    if (r.mse[g] < r.mse[r.best]) r.best = g;
  return r;
}

SingleFeatureModel best_single_feature(const Matrix& X, const std::vector<double>& y, size_t k_min, size_t k_max) {
  SingleFeatureModel m;
  double best = -1;
  for (size_t j = 0; j < X.cols; ++j) {
    const double c = mean_coverage(coverage_curve(X.column(j), y), k_min, k_max);
    if (c > best) best = c, m.feature = j;
  }
  const auto x = X.column(m.feature);
  const double mx = mean(x), my = mean(y);
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
  m.slope = sxx > 0 ? sxy / sxx : 0;
  m.intercept = my - m.slope * mx;
  return m;
}

NestedCvResult nested_cv(const Matrix& X, const std::vector<double>& y, const std::vector<int>& outer_fold,
                         int inner_k, uint64_t seed, const std::vector<GridPoint>& grid, size_t k_min,
                         size_t k_max, const EnetOptions& opts, int threads) {
  NestedCvResult r;
  r.selector_pred.assign(y.size(), 0.0);
  r.single_pred.assign(y.size(), 0.0);
  std::set<int> fold_set(outer_fold.begin(), outer_fold.end());
  r.outer_folds.assign(fold_set.begin(), fold_set.end());
  const size_t nf = r.outer_folds.size();
  r.chosen.resize(nf);
  r.chosen_single.resize(nf);
  r.models.resize(nf);
  std::vector<int> not_converged(nf, 0);
  // each outer fold is independent (its inner folds are seeded by its position): run them on
  // `threads` workers; the result does not depend on the thread count
  auto run_fold = [&](size_t pos) {
    const int f = r.outer_folds[pos];
    auto tr = rows_where(outer_fold, f, false), te = rows_where(outer_fold, f, true);
    const Matrix Xtr = X.take_rows(tr), Xte = X.take_rows(te);
    const auto ytr = take(y, tr);
    const auto inner = kfold_assignment(tr.size(), std::min<int>(inner_k, static_cast<int>(tr.size())), seed + 1 + pos);
    CvResult cv = grid_cv(Xtr, ytr, inner, grid, opts);
    not_converged[pos] = cv.not_converged;
    SelectorModel m = fit_selector(Xtr, ytr, grid[cv.best], opts);
    const auto p = m.predict(Xte);
    for (size_t i = 0; i < te.size(); ++i) r.selector_pred[te[i]] = p[i];
    SingleFeatureModel s = best_single_feature(Xtr, ytr, k_min, k_max);
    for (size_t i = 0; i < te.size(); ++i) r.single_pred[te[i]] = s.intercept + s.slope * Xte(i, s.feature);
    r.chosen[pos] = grid[cv.best];
    r.chosen_single[pos] = s.feature;
    r.models[pos] = std::move(m);
  };
  const size_t workers = std::max<size_t>(1, std::min<size_t>(nf, threads > 0 ? static_cast<size_t>(threads)
                                                                               : std::max(1u, std::thread::hardware_concurrency())));
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto worker = [&]() {
    for (size_t pos; (pos = next++) < nf;) {
      try {
        run_fold(pos);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  for (int n : not_converged) r.not_converged += n;
  return r;
}

double mean_absolute_error(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(a[i] - b[i]);
  return a.empty() ? NAN : s / static_cast<double>(a.size());
}

}  // namespace rmkit::basemodel
