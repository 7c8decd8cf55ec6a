// The per-stage work of pipeline.h: building each stage's requests from the items and applying
// the replies (parsing, averaging, filtering). Each function only touches alive items and drops
// an item with a counted reason; none sends anything itself (the CallRunner does).
#pragma once
#include <vector>

#include "rmkit/distill/call_runner.h"
#include "rmkit/distill/distill_item.h"
#include "rmkit/distill/pipeline.h"

namespace rmkit::distill {

// Stage 1 without policies: the labelled pair is the candidate pair (seeded presentation order).
void candidates_from_pairs(std::vector<DistillItem>& items, const DistillConfig& cfg);
// Stage 1 with policies: requests[k] belong to policy k; `apply` picks two distinct candidates
// per item (seeded).
std::vector<std::vector<ChatRequest>> candidate_requests(const std::vector<DistillItem>& items, const DistillConfig& cfg,
                                                         size_t n_policies, std::vector<size_t>* owner);
void apply_candidates(std::vector<DistillItem>& items, const DistillConfig& cfg,
                      const std::vector<std::vector<CallOutcome>>& outcomes, const std::vector<size_t>& owner,
                      size_t n_policies);

// Stage 2: both presentation orders (cfg.orders), `regrade` adds the tie note.
std::vector<ChatRequest> judge_requests(const std::vector<DistillItem>& items, const DistillConfig& cfg,
                                        const PromptSet& prompts, bool regrade, std::vector<size_t>* owner);
void apply_judge(std::vector<DistillItem>& items, const DistillConfig& cfg, const std::vector<CallOutcome>& outcomes,
                 const std::vector<size_t>& owner, bool regrade);

// Stage 3: the teacher's own answer, sampled as sample kTeacherSampleIndex of the run's seed (the
// policies' samples are 0..63), so that it is never one of the candidates when the teacher model
// is also a policy.
constexpr int64_t kTeacherSampleIndex = 1000000;
std::vector<ChatRequest> teacher_requests(const std::vector<DistillItem>& items, const DistillConfig& cfg,
                                          std::vector<size_t>* owner);
void apply_teacher(std::vector<DistillItem>& items, const std::vector<CallOutcome>& outcomes,
                   const std::vector<size_t>& owner);

// Stage 4: minimal-edit refinement of the rejected reply toward the teacher's answer.
std::vector<ChatRequest> refine_requests(std::vector<DistillItem>& items, const DistillConfig& cfg,
                                         const PromptSet& prompts, std::vector<size_t>* owner);
void apply_refine(std::vector<DistillItem>& items, const DistillConfig& cfg, const std::vector<CallOutcome>& outcomes,
                  const std::vector<size_t>& owner);

// Stage 5: the three-turn self-calibrated re-score.
std::vector<ChatRequest> rescore_requests(const std::vector<DistillItem>& items, const DistillConfig& cfg,
                                          const PromptSet& prompts, std::vector<size_t>* owner);
void apply_rescore(std::vector<DistillItem>& items, const DistillConfig& cfg, const std::vector<CallOutcome>& outcomes,
                   const std::vector<size_t>& owner);

// Stage 6: margin filter.
void apply_filter(std::vector<DistillItem>& items, const DistillConfig& cfg);

}  // namespace rmkit::distill
