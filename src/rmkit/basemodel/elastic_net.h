// Elastic net by coordinate descent, scikit-learn's parameterisation (torch-free):
//   minimise 1/(2n) ||y - X w - b||^2 + alpha l1_ratio ||w||_1 + alpha (1 - l1_ratio)/2 ||w||^2
// with an unpenalised intercept b (X and y are centred on the fitting rows, b = mean(y) - mean(X) w).
// Coordinate descent runs on the Gram matrix; every few sweeps the active set is polished by an
// exact solve of its KKT system (accepted only when it lowers the duality gap and keeps the
// signs); a fit still unconverged after fss_after sweeps continues with feature-sign search
// (exact active-set steps with a line search over sign changes); the fit stops when the duality gap (scikit-learn's formula) is below
// tol * ||y - mean(y)||^2 / n, or after max_sweeps. Plus the pieces of the selector pipeline: the
// z-scoring scaler and scikit-learn's PolynomialFeatures term order.
#pragma once
#include <string>
#include <vector>

#include "rmkit/basemodel/linalg.h"

namespace rmkit::basemodel {

// z-score with the mean and population standard deviation of the fitting rows; a constant column
// gets scale 1 (as scikit-learn's StandardScaler).
struct Standardizer {
  std::vector<double> mean, scale;
  static Standardizer fit(const Matrix& X);
  Matrix transform(const Matrix& X) const;
};

// Monomials of degree 1..degree over n features, each a sorted multiset of feature indices, in
// the order of scikit-learn's PolynomialFeatures(include_bias=False): by degree, then
// lexicographically (combinations with replacement).
std::vector<std::vector<size_t>> polynomial_terms(size_t n_features, int degree);
// "a", "a^2", "a b", "a^2 b" (PolynomialFeatures.get_feature_names_out style).
std::string term_name(const std::vector<size_t>& term, const std::vector<std::string>& names);
Matrix expand_polynomial(const Matrix& X, const std::vector<std::vector<size_t>>& terms);

struct EnetOptions {
  double tol = 1e-12;          // duality gap relative to ||y - mean(y)||^2 / n
  int max_sweeps = 20000;
  int check_every = 10;        // sweeps between gap checks
  int fss_after = 100;         // sweeps before feature-sign search takes over an unconverged fit
};

struct EnetFit {
  std::vector<double> coef;
  double intercept = 0;
  double gap = 0;              // final duality gap (objective units)
  int sweeps = 0;
  bool converged = false;
};

// Fits the elastic net. `warm` (optional, same size) starts coordinate descent from those
// coefficients (a path of decreasing alpha reuses the previous solution).
EnetFit fit_elastic_net(const Matrix& X, const std::vector<double>& y, double alpha, double l1_ratio,
                        const std::vector<double>* warm = nullptr, const EnetOptions& opts = {});

// The objective above at (coef, intercept) on (X, y).
double enet_objective(const Matrix& X, const std::vector<double>& y, double alpha, double l1_ratio,
                      const std::vector<double>& coef, double intercept);

// max over coordinates of the KKT violation of a solution (0 at the exact optimum): for w_j != 0,
// |g_j + alpha l1_ratio sign(w_j)|; for w_j = 0, max(0, |g_j| - alpha l1_ratio), where g is the
// gradient of the smooth part on the centred data.
double kkt_violation(const Matrix& X, const std::vector<double>& y, double alpha, double l1_ratio,
                     const std::vector<double>& coef);

}  // namespace rmkit::basemodel
