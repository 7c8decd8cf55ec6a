// The elastic-net selector against scikit-learn (tests/data/basemodel/enet_golden.json, written by
// scripts/make_basemodel_golden.py): PolynomialFeatures term order and names, coefficients and
// predictions of the full pipeline for several (alpha, l1_ratio, degree), and the grid point that
// CV with given folds selects. Plus the KKT conditions on random problems (n > p and p > n).
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "rmkit/basemodel/elastic_net.h"
#include "rmkit/basemodel/selector.h"
#include "rmkit/basemodel/stats.h"
#include "rmkit/core/file_io.h"

namespace rmkit::basemodel {
namespace {

nlohmann::json golden() {
  return nlohmann::json::parse(read_file(join_path(RMKIT_SOURCE_DIR, "tests/data/basemodel/enet_golden.json")));
}

Matrix matrix_of(const nlohmann::json& rows) {
  Matrix X(rows.size(), rows[0].size());
  for (size_t i = 0; i < X.rows; ++i)
    for (size_t j = 0; j < X.cols; ++j) X(i, j) = rows[i][j].get<double>();
  return X;
}

TEST(BasemodelEnet, PolynomialTermOrderIsScikitLearns) {
  const std::vector<std::string> names = {"a", "b", "c"};
  auto terms = polynomial_terms(3, 2);
  std::vector<std::string> got;
  for (const auto& t : terms) got.push_back(term_name(t, names));
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c", "a^2", "a b", "a c", "b^2", "b c", "c^2"}));
  EXPECT_EQ(polynomial_terms(8, 3).size(), 164u);  // C(8 + 3, 3) - 1
}

TEST(BasemodelEnet, MatchesScikitLearnGolden) {
  auto g = golden();
  const Matrix X = matrix_of(g["X"]);
  const auto y = g["y"].get<std::vector<double>>();
  const auto names = g["features"].get<std::vector<std::string>>();
  for (const auto& f : g["fits"]) {
    GridPoint hp{f["degree"].get<int>(), f["alpha"].get<double>(), f["l1_ratio"].get<double>()};
    SCOPED_TRACE("degree " + std::to_string(hp.degree) + " alpha " + std::to_string(hp.alpha) + " l1 " +
                 std::to_string(hp.l1_ratio));
    SelectorModel m = fit_selector(X, y, hp);
    EXPECT_TRUE(m.fit.converged);
    const auto terms = f["terms"].get<std::vector<std::string>>();
    ASSERT_EQ(m.terms.size(), terms.size());
    for (size_t j = 0; j < terms.size(); ++j) EXPECT_EQ(term_name(m.terms[j], names), terms[j]);
    const auto coef = f["coef"].get<std::vector<double>>();
    for (size_t j = 0; j < coef.size(); ++j) {
      EXPECT_NEAR(m.fit.coef[j], coef[j], 1e-6) << terms[j];
      EXPECT_EQ(m.fit.coef[j] == 0, std::fabs(coef[j]) < 1e-12) << terms[j] << " sparsity pattern";
    }
    EXPECT_NEAR(m.fit.intercept, f["intercept"].get<double>(), 1e-6);
    const auto pred = m.predict(X);
    const auto ref = f["predictions"].get<std::vector<double>>();
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(pred[i], ref[i], 1e-6);
  }
}

TEST(BasemodelEnet, CvWithGivenFoldsSelectsScikitLearnsGridPoint) {
  auto g = golden();
  const Matrix X = matrix_of(g["X"]);
  const auto y = g["y"].get<std::vector<double>>();
  const auto folds = g["cv"]["folds"].get<std::vector<int>>();
  const auto grid = default_grid();
  ASSERT_EQ(grid.size(), g["cv"]["grid"].size());
  for (size_t i = 0; i < grid.size(); ++i) {  // same grid order as the reference
    EXPECT_EQ(grid[i].degree, g["cv"]["grid"][i]["degree"].get<int>());
    EXPECT_EQ(grid[i].alpha, g["cv"]["grid"][i]["alpha"].get<double>());
    EXPECT_EQ(grid[i].l1_ratio, g["cv"]["grid"][i]["l1_ratio"].get<double>());
  }
  CvResult cv = grid_cv(X, y, folds, grid);
  EXPECT_EQ(cv.not_converged, 0);
  EXPECT_EQ(cv.best, g["cv"]["best"].get<size_t>());
  const auto mse = g["cv"]["mse"].get<std::vector<double>>();
  for (size_t i = 0; i < mse.size(); ++i) EXPECT_NEAR(cv.mse[i], mse[i], 1e-6 * std::max(1.0, mse[i])) << i;
}

TEST(BasemodelEnet, KktConditionsOnRandomProblems) {
  Rng rng(99);
  auto normal = [&]() {  // Box-Muller
    const double u = std::max(rng.uniform(), 1e-300), v = rng.uniform();
    return std::sqrt(-2 * std::log(u)) * std::cos(2 * std::acos(-1.0) * v);
  };
  for (auto [n, p] : {std::pair<size_t, size_t>{40, 6}, {25, 60}}) {
    Matrix X(n, p);
    std::vector<double> y(n);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < p; ++j) X(i, j) = normal() + (j % 3 == 0 ? 0.8 * X(i, 0) : 0.0);  // correlated columns
      y[i] = 3 * X(i, 0) - 2 * X(i, 1 % p) + 0.5 * normal() + 10;
    }
    for (double alpha : {1.0, 0.1, 0.01, 0.001})
      for (double l1 : {0.0, 0.3, 1.0}) {
        EnetFit f = fit_elastic_net(X, y, alpha, l1);
        SCOPED_TRACE("n " + std::to_string(n) + " p " + std::to_string(p) + " alpha " + std::to_string(alpha) +
                     " l1 " + std::to_string(l1));
        EXPECT_TRUE(f.converged);
        EXPECT_LT(kkt_violation(X, y, alpha, l1, f.coef), 1e-7);
        // the optimum: no coordinate move lowers the objective
        const double obj = enet_objective(X, y, alpha, l1, f.coef, f.intercept);
        for (size_t j = 0; j < p; j += 7)
          for (double d : {1e-4, -1e-4}) {
            auto w = f.coef;
            w[j] += d;
            double b = 0;  // the optimal intercept for w
            for (size_t i = 0; i < n; ++i) {
              double s = y[i];
              for (size_t k = 0; k < p; ++k) s -= X(i, k) * w[k];
              b += s / static_cast<double>(n);
            }
            EXPECT_GE(enet_objective(X, y, alpha, l1, w, b), obj - 1e-12);
          }
        if (l1 == 1.0 && alpha == 1.0) {  // strong lasso penalty: sparse
          size_t nz = 0;
          for (double w : f.coef) nz += w != 0;
          EXPECT_LT(nz, p);
        }
      }
  }
}

TEST(BasemodelEnet, NestedCvDoesNotDependOnThreads) {
  auto g = golden();
  const Matrix X = matrix_of(g["X"]);
  const auto y = g["y"].get<std::vector<double>>();
  const auto outer = kfold_assignment(y.size(), 5, 11);
  const auto grid = make_grid({1, 2}, {0.1, 0.01}, {0.5, 1});
  auto a = nested_cv(X, y, outer, 4, 3, grid, 5, 10, {}, 1);
  auto b = nested_cv(X, y, outer, 4, 3, grid, 5, 10, {}, 3);
  EXPECT_EQ(a.selector_pred, b.selector_pred);
  EXPECT_EQ(a.single_pred, b.single_pred);
  ASSERT_EQ(a.chosen.size(), 5u);
  for (size_t k = 0; k < a.chosen.size(); ++k) {
    EXPECT_EQ(a.chosen[k].degree, b.chosen[k].degree);
    EXPECT_EQ(a.chosen[k].alpha, b.chosen[k].alpha);
    EXPECT_EQ(a.chosen[k].l1_ratio, b.chosen[k].l1_ratio);
  }
  // out-of-fold: a row's prediction comes from a model that never saw it, so it differs from the
  // in-sample refit's
  SelectorModel full = fit_selector(X, y, a.chosen[0]);
  const auto in_sample = full.predict(X);
  EXPECT_GT(mean_absolute_error(a.selector_pred, y), mean_absolute_error(in_sample, y));
}

TEST(BasemodelEnet, KFoldAssignmentIsSeededAndBalanced) {
  auto a = kfold_assignment(23, 10, 5), b = kfold_assignment(23, 10, 5), c = kfold_assignment(23, 10, 6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int> count(10, 0);
  for (int f : a) ++count[static_cast<size_t>(f)];
  for (int f = 0; f < 10; ++f) EXPECT_EQ(count[static_cast<size_t>(f)], f < 3 ? 3 : 2);  // 23 = 3*3 + 7*2
  auto loo = kfold_assignment(5, 10, 1);  // k >= n: one row per fold
  std::sort(loo.begin(), loo.end());
  EXPECT_EQ(loo, (std::vector<int>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace rmkit::basemodel
