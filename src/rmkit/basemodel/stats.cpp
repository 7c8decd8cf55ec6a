#include "rmkit/basemodel/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace rmkit::basemodel {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

uint64_t Rng::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t Rng::below(uint64_t n) {
  if (n <= 1) return 0;
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t r;
  do r = next();
  while (r >= limit);
  return r % n;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double mean(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double pstdev(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(x.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
    const double avg = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = std::min(x.size(), y.size());
  if (n < 2) return kNaN;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx <= 0 || syy <= 0) return kNaN;
  const double r = sxy / std::sqrt(sxx * syy);
  return std::max(-1.0, std::min(1.0, r));
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  return pearson(average_ranks(x), average_ranks(y));
}

double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = std::min(x.size(), y.size());
  if (n < 2) return kNaN;
  double c = 0, d = 0, tx = 0, ty = 0, n0 = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      n0 += 1;
      const double dx = x[i] - x[j], dy = y[i] - y[j];
      if (dx == 0) tx += 1;
      if (dy == 0) ty += 1;
      if (dx == 0 || dy == 0) continue;
      if ((dx > 0) == (dy > 0)) c += 1;
      else d += 1;
    }
  const double den = std::sqrt((n0 - tx) * (n0 - ty));
  if (den <= 0) return kNaN;
  return (c - d) / den;
}

namespace {
// Continued fraction for I_x(a, b) (the classical even/odd-step form, evaluated by modified Lentz).
double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-16;
  double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < eps) break;
  }
  return h;
}
}  // namespace

double incomplete_beta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || std::isnan(x)) return kNaN;
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double ln_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(ln_front);
  // the continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise
  if (x < (a + 1) / (a + b + 2)) return front * beta_cf(a, b, x) / a;
  return 1 - front * beta_cf(b, a, 1 - x) / b;
}

double student_t_two_sided_p(double t, double df) {
  if (std::isnan(t) || !(df > 0)) return kNaN;
  if (std::isinf(t)) return 0;
  // P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)
  return incomplete_beta(df / 2, 0.5, df / (df + t * t));
}

double correlation_p_value(double r, size_t n) {
  if (std::isnan(r) || n < 3) return kNaN;
  const double df = static_cast<double>(n) - 2;
  if (std::fabs(r) >= 1) return 0;
  const double t = r * std::sqrt(df / (1 - r * r));
  return student_t_two_sided_p(t, df);
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

Interval bootstrap_interval(const std::vector<double>& x, const std::vector<double>& y,
                            const std::function<double(const std::vector<double>&, const std::vector<double>&)>& stat,
                            int resamples, uint64_t seed, double level) {
  const size_t n = std::min(x.size(), y.size());
  std::vector<double> vals;
  vals.reserve(static_cast<size_t>(std::max(0, resamples)));
  Rng rng(seed);
  std::vector<double> bx(n), by(n);
  for (int b = 0; b < resamples; ++b) {
    for (size_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(rng.below(n));
      bx[i] = x[k];
      by[i] = y[k];
    }
    const double v = stat(bx, by);
    if (!std::isnan(v)) vals.push_back(v);
  }
  const double tail = (1 - level) / 2 * 100;
  return {percentile(vals, tail), percentile(vals, 100 - tail)};
}

}  // namespace rmkit::basemodel
