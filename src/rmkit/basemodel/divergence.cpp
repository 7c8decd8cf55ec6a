#include "rmkit/basemodel/divergence.h"

#include <algorithm>
#include <cmath>

#include "rmkit/core/error.h"

namespace rmkit::basemodel {

double js_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  double d = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = 0.5 * (p[i] + q[i]);
    if (p[i] > 0) d += 0.5 * p[i] * std::log2(p[i] / m);
    if (q[i] > 0) d += 0.5 * q[i] * std::log2(q[i] / m);
  }
  return std::max(0.0, d);
}

JsdResult jensen_shannon(const std::vector<double>& a, const std::vector<double>& b, int bins) {
  if (a.empty() || b.empty()) throw UsageError("jsd: both score files need at least one value");
  if (bins < 1) throw UsageError("jsd: --bins must be >= 1");
  JsdResult r;
  r.low = std::min(*std::min_element(a.begin(), a.end()), *std::min_element(b.begin(), b.end()));
  r.high = std::max(*std::max_element(a.begin(), a.end()), *std::max_element(b.begin(), b.end()));
  r.bins = r.high > r.low ? bins : 1;
  auto hist = [&](const std::vector<double>& v) {
    std::vector<double> h(static_cast<size_t>(r.bins), 0.0);
    for (double x : v) {
      size_t k = 0;
      if (r.bins > 1) {
        const double f = (x - r.low) / (r.high - r.low) * r.bins;
        k = std::min(static_cast<size_t>(r.bins - 1), static_cast<size_t>(std::max(0.0, std::floor(f))));
      }
      h[k] += 1;
    }
    for (double& c : h) c /= static_cast<double>(v.size());
    return h;
  };
  r.p = hist(a);
  r.q = hist(b);
  r.divergence = js_divergence(r.p, r.q);
  r.distance = std::sqrt(r.divergence);
  return r;
}

}  // namespace rmkit::basemodel
