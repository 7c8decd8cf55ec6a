// Jensen-Shannon distance between two score distributions (torch-free). Binning, stated so the
// number is reproducible: `bins` equal-width bins over the pooled range [min, max] of both samples
// (the last bin closed on the right; a zero-width range is one bin); each sample's histogram is
// normalised to probabilities; JS divergence with base-2 logarithms (in [0, 1]); the distance is
// its square root (as scipy.spatial.distance.jensenshannon(p, q, base=2)).
#pragma once
#include <vector>

namespace rmkit::basemodel {

struct JsdResult {
  double divergence = 0, distance = 0;
  double low = 0, high = 0;
  int bins = 0;
  std::vector<double> p, q;  // the two normalised histograms
};

// Throws UsageError when a sample is empty or bins < 1.
JsdResult jensen_shannon(const std::vector<double>& a, const std::vector<double>& b, int bins);
// JS divergence (base 2) of two probability vectors of the same length.
double js_divergence(const std::vector<double>& p, const std::vector<double>& q);

}  // namespace rmkit::basemodel
