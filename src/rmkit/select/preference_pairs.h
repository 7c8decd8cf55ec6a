// Turning scored samples into DPO pairs (LASeR's rule and the ensemble baselines). Torch-free.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace rmkit::select {

struct SamplePair {
  size_t chosen = 0, rejected = 0;  // sample indices within the prompt
};

// Per prompt: sort samples by score (descending, ties by index) and pair the top one with ranks
// 2..P+1 ("top-vs-rest", the released code's rule, P = top_pairs) or with the last one
// ("best-worst"). Pairs with equal scores or identical texts are skipped.
std::vector<SamplePair> build_pairs(const std::vector<double>& scores, const std::vector<std::string>& texts,
                                    const std::string& rule, size_t top_pairs);

// ensemble-mean: per arm, z-normalise its scores over all samples of the batch (population std;
// an arm with zero spread contributes 0), then average over arms. scores[k][i]: arm k, sample i.
std::vector<double> ensemble_mean(const std::vector<std::vector<double>>& scores);

// ensemble-agreement: keep the pairs that a strict majority of arms order as the pair does.
// offset: index of the prompt's first sample in the flattened per-arm score vectors.
std::vector<SamplePair> filter_agreement(const std::vector<SamplePair>& pairs, const std::vector<std::vector<double>>& scores,
                                         size_t offset);

}  // namespace rmkit::select
