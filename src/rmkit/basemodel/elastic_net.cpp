#include "rmkit/basemodel/elastic_net.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace rmkit::basemodel {

Standardizer Standardizer::fit(const Matrix& X) {
  Standardizer s;
  const double n = static_cast<double>(std::max<size_t>(1, X.rows));
  s.mean.assign(X.cols, 0);
  s.scale.assign(X.cols, 1);
  for (size_t j = 0; j < X.cols; ++j) {
    double m = 0, v = 0;
    for (size_t i = 0; i < X.rows; ++i) m += X(i, j);
    m /= n;
    for (size_t i = 0; i < X.rows; ++i) v += (X(i, j) - m) * (X(i, j) - m);
    const double sd = std::sqrt(v / n);
    s.mean[j] = m;
    // scikit-learn treats a standard deviation within rounding of zero as constant
    s.scale[j] = sd > 10 * 2.220446049250313e-16 * std::max(1.0, std::fabs(m)) ? sd : 1.0;
  }
  return s;
}

Matrix Standardizer::transform(const Matrix& X) const {
  Matrix Z(X.rows, X.cols);
  for (size_t i = 0; i < X.rows; ++i)
    for (size_t j = 0; j < X.cols; ++j) Z(i, j) = (X(i, j) - mean[j]) / scale[j];
  return Z;
}

std::vector<std::vector<size_t>> polynomial_terms(size_t n_features, int degree) {
  std::vector<std::vector<size_t>> out;
  std::vector<size_t> cur;
  std::function<void(size_t, int)> rec = [&](size_t start, int left) {
    if (left == 0) {
      out.push_back(cur);
      return;
    }
    for (size_t f = start; f < n_features; ++f) {
      cur.push_back(f);
      rec(f, left - 1);
      cur.pop_back();
    }
  };
  for (int d = 1; d <= degree; ++d) rec(0, d);
  return out;
}

std::string term_name(const std::vector<size_t>& term, const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < term.size();) {
    size_t j = i;
    while (j < term.size() && term[j] == term[i]) ++j;
    if (!s.empty()) s += ' ';
    s += names.at(term[i]);
    if (j - i > 1) s += "^" + std::to_string(j - i);
    i = j;
  }
  return s;
}

Matrix expand_polynomial(const Matrix& X, const std::vector<std::vector<size_t>>& terms) {
  Matrix P(X.rows, terms.size());
  for (size_t i = 0; i < X.rows; ++i)
    for (size_t t = 0; t < terms.size(); ++t) {
      double v = 1;
      for (size_t f : terms[t]) v *= X(i, f);
      P(i, t) = v;
    }
  return P;
}

namespace {

struct Centred {
  Matrix Xc;
  std::vector<double> yc, xmean;
  double ymean = 0;
};

Centred centre(const Matrix& X, const std::vector<double>& y) {
  Centred c;
  const size_t n = X.rows, p = X.cols;
  c.xmean.assign(p, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < p; ++j) c.xmean[j] += X(i, j);
  for (double& m : c.xmean) m /= static_cast<double>(n);
  for (double v : y) c.ymean += v;
  c.ymean /= static_cast<double>(n);
  c.Xc = Matrix(n, p);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < p; ++j) c.Xc(i, j) = X(i, j) - c.xmean[j];
  c.yc.resize(n);
  for (size_t i = 0; i < n; ++i) c.yc[i] = y[i] - c.ymean;
  return c;
}

// Duality gap of 1/2||R||^2 + l1 ||w||_1 + l2/2 ||w||^2 (l1, l2 scaled by n; scikit-learn's
// formula, i.e. the lasso gap on the augmented data [X; sqrt(l2) I]), divided by n to be in the
// units of our objective.
double duality_gap(const Centred& c, const std::vector<double>& w, double l1, double l2) {
  const size_t n = c.Xc.rows, p = c.Xc.cols;
  std::vector<double> R(c.yc);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < p; ++j) s += c.Xc(i, j) * w[j];
    R[i] -= s;
  }
  double dual_norm = 0, r2 = 0, w2 = 0, l1norm = 0, ry = 0, xtr2 = 0;
  for (size_t j = 0; j < p; ++j) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += c.Xc(i, j) * R[i];
    dual_norm = std::max(dual_norm, std::fabs(s - l2 * w[j]));
    xtr2 += s * s;
    w2 += w[j] * w[j];
    l1norm += std::fabs(w[j]);
  }
  for (size_t i = 0; i < n; ++i) r2 += R[i] * R[i], ry += R[i] * c.yc[i];
  double gap;
  if (l1 == 0) {
    // ridge: the augmented-lasso dual point would have to be scaled to zero (scikit-learn's gap is
    // then the primal objective and never converges); use the ridge dual at theta = R instead:
    // D(theta) = theta.y - |theta|^2/2 - |X^T theta|^2 / (2 l2)
    if (l2 <= 0) return 0;
    gap = r2 + 0.5 * l2 * w2 - ry + xtr2 / (2 * l2);
  } else {
    double cst = 1;
    if (dual_norm > l1) {
      cst = l1 / dual_norm;
      gap = 0.5 * (r2 + r2 * cst * cst);
    } else {
      gap = r2;
    }
    gap += l1 * l1norm - cst * ry + 0.5 * l2 * (1 + cst * cst) * w2;
  }
  return gap / static_cast<double>(n);
}

double soft(double x, double t) { return x > t ? x - t : (x < -t ? x + t : 0.0); }

// f(w) = 1/2 w'Gw - q'w + l1 |w|_1 + l2/2 |w|^2: the objective (1/n-scaled, centred data) up to a
// constant.
double smooth_objective(const Matrix& G, const std::vector<double>& q, double l1, double l2,
                        const std::vector<double>& w) {
  const size_t p = q.size();
  double f = 0;
  for (size_t a = 0; a < p; ++a) {
    if (w[a] == 0) continue;
    double s = 0;
    for (size_t b = 0; b < p; ++b)
      if (w[b] != 0) s += G(a, b) * w[b];
    f += 0.5 * w[a] * s - q[a] * w[a] + l1 * std::fabs(w[a]) + 0.5 * l2 * w[a] * w[a];
  }
  return f;
}

// Feature-sign search (Lee, Battle, Raina & Ng, NIPS 2007) on f above, from w: each step solves the
// active set's system exactly with the current signs, then line-searches to the first sign change
// that lowers f; zero coordinates that violate optimality join one at a time. Finite and exact
// where coordinate descent crawls (collinear polynomial terms, p > n). Returns true at a point
// satisfying the optimality conditions to `eps`.
bool feature_sign(const Matrix& G, const std::vector<double>& q, double l1, double l2, std::vector<double>& w,
                  int max_iter, double eps) {
  const size_t p = q.size();
  std::vector<signed char> theta(p);
  for (size_t j = 0; j < p; ++j) theta[j] = static_cast<signed char>((w[j] > 0) - (w[j] < 0));
  std::vector<double> g(p);
  for (int it = 0; it < max_iter; ++it) {
    for (size_t a = 0; a < p; ++a) {  // gradient of the smooth part
      double s = -q[a] + l2 * w[a];
      for (size_t b = 0; b < p; ++b)
        if (w[b] != 0) s += G(a, b) * w[b];
      g[a] = s;
    }
    double worst_active = 0;
    for (size_t j = 0; j < p; ++j)
      if (w[j] != 0) worst_active = std::max(worst_active, std::fabs(g[j] + l1 * theta[j]));
    if (worst_active <= eps) {
      size_t best = p;
      double viol = eps;
      for (size_t j = 0; j < p; ++j)
        if (w[j] == 0 && std::fabs(g[j]) - l1 > viol) viol = std::fabs(g[j]) - l1, best = j;
      if (best == p) return true;
      theta[best] = static_cast<signed char>(g[best] > 0 ? -1 : 1);
    }
    std::vector<size_t> act;
    for (size_t j = 0; j < p; ++j)
      if (theta[j] != 0) act.push_back(j);
    Matrix A(act.size(), act.size());
    std::vector<double> rhs(act.size()), z;
    double maxdiag = 0;
    for (size_t a = 0; a < act.size(); ++a) {
      for (size_t b = 0; b < act.size(); ++b) A(a, b) = G(act[a], act[b]);
      A(a, a) += l2;
      maxdiag = std::max(maxdiag, A(a, a));
      rhs[a] = q[act[a]] - l1 * theta[act[a]];
    }
    if (!cholesky_solve(A, rhs, &z)) {
      for (size_t a = 0; a < act.size(); ++a) A(a, a) += 1e-10 * std::max(1.0, maxdiag);
      if (!cholesky_solve(A, rhs, &z)) return false;
    }
    // line search over the segment w -> z: its end and every sign change on the way
    std::vector<double> ts = {1.0};
    for (size_t a = 0; a < act.size(); ++a) {
      const double wa = w[act[a]], d = z[a] - wa;
      if (wa != 0 && d != 0) {
        const double t = -wa / d;
        if (t > 0 && t < 1) ts.push_back(t);
      }
    }
    double best_f = smooth_objective(G, q, l1, l2, w), best_t = 0;
    std::vector<double> cand = w;
    for (double t : ts) {
      for (size_t a = 0; a < act.size(); ++a) cand[act[a]] = w[act[a]] + t * (z[a] - w[act[a]]);
      const double f = smooth_objective(G, q, l1, l2, cand);
      if (f < best_f) best_f = f, best_t = t;
    }
    if (best_t == 0) return false;  // no descent: give up (coordinate descent continues)
    for (size_t a = 0; a < act.size(); ++a) {
      const size_t j = act[a];
      double v = w[j] + best_t * (z[a] - w[j]);
      if (best_t < 1 && w[j] != 0 && std::fabs(-w[j] / (z[a] - w[j]) - best_t) <= 1e-15) v = 0;  // the crossing one
      if (std::fabs(v) <= 1e-300) v = 0;
      w[j] = v;
      theta[j] = static_cast<signed char>((v > 0) - (v < 0));
    }
  }
  return false;
}

}  // namespace

EnetFit fit_elastic_net(const Matrix& X, const std::vector<double>& y, double alpha, double l1_ratio,
                        const std::vector<double>* warm, const EnetOptions& opts) {
  const size_t n = X.rows, p = X.cols;
  EnetFit fit;
  fit.coef.assign(p, 0);
  if (n == 0) return fit;
  Centred c = centre(X, y);
  const double nd = static_cast<double>(n);
  const double l1 = alpha * l1_ratio, l2 = alpha * (1 - l1_ratio);
  // Gram matrix and correlations (1/n scaled)
  Matrix G(p, p);
  std::vector<double> q(p, 0);
  for (size_t a = 0; a < p; ++a) {
    for (size_t b = a; b < p; ++b) {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += c.Xc(i, a) * c.Xc(i, b);
      G(a, b) = G(b, a) = s / nd;
    }
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += c.Xc(i, a) * c.yc[i];
    q[a] = s / nd;
  }
  double y2 = 0;
  for (double v : c.yc) y2 += v * v;
  const double target_gap = opts.tol * std::max(y2 / nd, 1e-300);
  std::vector<double> w(p, 0);
  if (warm && warm->size() == p) w = *warm;
  std::vector<double> Gw(p, 0);
  auto recompute_gw = [&]() {
    for (size_t a = 0; a < p; ++a) {
      double s = 0;
      for (size_t b = 0; b < p; ++b) s += G(a, b) * w[b];
      Gw[a] = s;
    }
  };
  recompute_gw();
  auto gap_of = [&](const std::vector<double>& v) { return duality_gap(c, v, l1 * nd, l2 * nd); };
  // exact solve on the active set with the current signs; accepted when it keeps every sign
  auto polish = [&]() -> bool {
    // ridge (l1 = 0): signs do not matter and every coordinate is active
    std::vector<size_t> act;
    for (size_t j = 0; j < p; ++j)
      if (w[j] != 0 || l1 == 0) act.push_back(j);
    if (act.empty()) return false;
    Matrix A(act.size(), act.size());
    std::vector<double> rhs(act.size());
    for (size_t a = 0; a < act.size(); ++a) {
      for (size_t b = 0; b < act.size(); ++b) A(a, b) = G(act[a], act[b]);
      A(a, a) += l2;
      rhs[a] = q[act[a]] - l1 * (w[act[a]] > 0 ? 1 : -1);
    }
    std::vector<double> sol;
    if (!cholesky_solve(A, rhs, &sol)) return false;
    std::vector<double> cand(p, 0);
    for (size_t a = 0; a < act.size(); ++a) {
      if (l1 > 0 && ((sol[a] > 0) != (w[act[a]] > 0) || sol[a] == 0)) return false;
      cand[act[a]] = sol[a];
    }
    const double g_new = gap_of(cand);
    if (!(g_new < fit.gap)) return false;
    w = cand;
    fit.gap = g_new;
    recompute_gw();
    return true;
  };
  fit.gap = gap_of(w);
  if (l1 == 0 && fit.gap > target_gap) polish();
  int sweeps = 0;
  std::vector<signed char> last_pattern, failed_pattern;
  while (fit.gap > target_gap && sweeps < opts.max_sweeps) {
    for (int s = 0; s < opts.check_every && sweeps < opts.max_sweeps; ++s, ++sweeps) {
      for (size_t j = 0; j < p; ++j) {
        const double gjj = G(j, j);
        if (gjj + l2 <= 0) continue;
        const double rho = q[j] - Gw[j] + gjj * w[j];
        const double nw = soft(rho, l1) / (gjj + l2);
        const double d = nw - w[j];
        if (d != 0) {
          for (size_t a = 0; a < p; ++a) Gw[a] += d * G(a, j);
          w[j] = nw;
        }
      }
    }
    fit.gap = gap_of(w);
    if (fit.gap > target_gap && (sweeps == opts.fss_after || (sweeps > opts.fss_after && sweeps % 1000 == 0))) {
      // coordinate descent is crawling: switch to feature-sign search from here
      std::vector<double> v = w;
      double qmax = 0;
      for (double x : q) qmax = std::max(qmax, std::fabs(x));
      feature_sign(G, q, l1, l2, v, 20 * static_cast<int>(p) + 100, 1e-13 * std::max(1.0, qmax));
      const double g_new = gap_of(v);
      if (g_new < fit.gap) {
        w = v;
        fit.gap = g_new;
        recompute_gw();
      }
    }
    // polish once the support and signs have settled (same pattern as at the last check), and
    // never twice for a pattern whose exact solve was rejected
    std::vector<signed char> pattern(p);
    for (size_t j = 0; j < p; ++j) pattern[j] = static_cast<signed char>((w[j] > 0) - (w[j] < 0));
    if (fit.gap > target_gap && pattern == last_pattern && pattern != failed_pattern && !polish())
      failed_pattern = pattern;
    last_pattern = std::move(pattern);
  }
  fit.converged = fit.gap <= target_gap;
  fit.sweeps = sweeps;
  fit.coef = w;
  fit.intercept = c.ymean;
  for (size_t j = 0; j < p; ++j) fit.intercept -= c.xmean[j] * w[j];
  return fit;
}

double enet_objective(const Matrix& X, const std::vector<double>& y, double alpha, double l1_ratio,
                      const std::vector<double>& coef, double intercept) {
  double r2 = 0, a1 = 0, a2 = 0;
  for (size_t i = 0; i < X.rows; ++i) {
    double s = intercept;
    for (size_t j = 0; j < X.cols; ++j) s += X(i, j) * coef[j];
    r2 += (y[i] - s) * (y[i] - s);
  }
  for (double w : coef) a1 += std::fabs(w), a2 += w * w;
  return r2 / (2.0 * static_cast<double>(X.rows)) + alpha * l1_ratio * a1 + alpha * (1 - l1_ratio) / 2 * a2;
}

double kkt_violation(const Matrix& X, const std::vector<double>& y, double alpha, double l1_ratio,
                     const std::vector<double>& coef) {
  Centred c = centre(X, y);
  const size_t n = X.rows, p = X.cols;
  std::vector<double> R(c.yc);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < p; ++j) R[i] -= c.Xc(i, j) * coef[j];
  double worst = 0;
  const double l1 = alpha * l1_ratio, l2 = alpha * (1 - l1_ratio);
  for (size_t j = 0; j < p; ++j) {
    double g = 0;
    for (size_t i = 0; i < n; ++i) g -= c.Xc(i, j) * R[i];
    g = g / static_cast<double>(n) + l2 * coef[j];
    const double v = coef[j] != 0 ? std::fabs(g + l1 * (coef[j] > 0 ? 1 : -1)) : std::max(0.0, std::fabs(g) - l1);
    worst = std::max(worst, v);
  }
  return worst;
}

}  // namespace rmkit::basemodel
