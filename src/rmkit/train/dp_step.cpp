#include "rmkit/train/dp_step.h"

#include "rmkit/train/logprobs.h"
#include "rmkit/train/trainer_impl.h"

namespace rmkit::train {

std::unique_ptr<DataParallelStep> DataParallelStep::create(const std::vector<torch::Tensor>& params,
                                                           dist::ReducerOptions ro) {
  auto g = dist::default_group();
  if (!g || g->size() <= 1) return nullptr;
  return std::make_unique<DataParallelStep>(g, params, ro);
}

DataParallelStep::DataParallelStep(std::shared_ptr<dist::Group> g, const std::vector<torch::Tensor>& params,
                                   dist::ReducerOptions ro)
    : group_(std::move(g)), reducer_(std::make_unique<dist::GradReducer>(group_, params, ro)) {}

void DataParallelStep::broadcast_parameters(const std::vector<torch::Tensor>& params) {
  dist::broadcast_tensors(*group_, params, 0, "broadcast of rank 0's initial parameters");
}

std::vector<size_t> DataParallelStep::shard(const std::vector<size_t>& global, bool* dummy) const {
  const size_t n = global.size(), W = static_cast<size_t>(world()), r = static_cast<size_t>(rank());
  const size_t base = n / W, extra = n % W;
  const size_t begin = r * base + std::min(r, extra), len = base + (r < extra ? 1 : 0);
  *dummy = len == 0;
  if (len == 0) return {global.front()};
  return std::vector<size_t>(global.begin() + static_cast<std::ptrdiff_t>(begin),
                             global.begin() + static_cast<std::ptrdiff_t>(begin + len));
}

void DataParallelStep::seed_step(uint64_t seed, int64_t step) {
  step_ = step;
  uint64_t x = seed ^ (0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(rank()) + 1)) ^
               (0xBF58476D1CE4E5B9ull * (static_cast<uint64_t>(step) + 1));
  x ^= x >> 31;
  torch::manual_seed(x & 0x7FFFFFFFFFFFFFFFull);
}

LossResult DataParallelStep::combine(const std::vector<LossTerm>& terms, const LossInputs& in,
                                     const LossHyper& hyper, const PairBatch& b) {
  // What each term averages over, on this rank: pairs, SFT target tokens, KL positions or
  // present regression targets.
  double pairs = dummy_ ? 0 : static_cast<double>(b.B), sft = 0, kl = 0, reg = 0;
  if (!dummy_) {
    if (b.teacher_count > 0 && b.teacher_response_mask.defined())
      sft = target_mask(b.teacher_response_mask, torch::kDouble).sum().item<double>();
    if (in.kl_mask.defined()) kl = target_mask(in.kl_mask, torch::kDouble).sum().item<double>();
    if (in.attributes.defined() && in.head_out.defined()) {
      auto present = in.attributes.isnan().logical_not();
      if (in.attributes_mask.defined()) {
        auto m = in.attributes_mask.to(torch::kBool);
        if (m.dim() == 1) m = m.unsqueeze(1).expand_as(present);
        present = present.logical_and(m);
      }
      reg = present.sum().item<double>();
    }
  }
  auto counts = torch::tensor({pairs, sft, kl, reg}, torch::kDouble);
  auto global = counts.clone();
  group_->allreduce_sum(global, "all-reduce of the loss counts (step " + std::to_string(step_ + 1) + ")");
  auto scale_of = [&](const std::string& name) {
    int k = name == "sft" ? 1 : name == "kl" ? 2 : name == "regression" ? 3 : 0;
    double c = counts[k].item<double>(), C = global[k].item<double>();
    return C > 0 ? c * world() / C : 0.0;
  };
  LossResult res;
  torch::Tensor total;
  for (const auto& t : terms) {
    torch::Tensor v = compute_term(t.name, in, hyper) * scale_of(t.name);
    res.components[t.name] = v.detach();
    if (t.weight == 0) continue;
    torch::Tensor wv = v * t.weight;
    total = total.defined() ? total + wv : wv;
  }
  if (!total.defined()) total = torch::zeros_like(res.components.begin()->second);
  res.total = total;
  return res;
}

void DataParallelStep::reduce_stats(StepStats* st, const std::string& what) {
  std::vector<double> v = {st->loss_sum,       static_cast<double>(st->pairs),   static_cast<double>(st->correct),
                           st->ties,           st->margin_sum,                    st->reward_sum,
                           st->reward_sq_sum,  static_cast<double>(st->rewards),  static_cast<double>(st->real_tokens),
                           static_cast<double>(st->computed_tokens), static_cast<double>(st->slots), st->bt_loss_sum};
  for (const auto& [k, x] : st->components) v.push_back(x);
  auto t = torch::tensor(v, torch::kDouble);
  group_->allreduce_sum(t, what);
  auto a = t.accessor<double, 1>();
  const double W = world();
  st->loss_sum = a[0] / W;  // each rank's loss is scaled so that the ranks' mean is the global loss
  st->pairs = std::llround(a[1]);
  st->correct = std::llround(a[2]);
  st->ties = a[3];
  st->margin_sum = a[4];
  st->reward_sum = a[5];
  st->reward_sq_sum = a[6];
  st->rewards = std::llround(a[7]);
  st->real_tokens = std::llround(a[8]);
  st->computed_tokens = std::llround(a[9]);
  st->slots = std::llround(a[10]);
  st->bt_loss_sum = a[11];
  int64_t i = 12;
  for (auto& [k, x] : st->components) x = a[i++] / W;
}

double DataParallelStep::sum(double v, const std::string& what) {
  auto t = torch::tensor({v}, torch::kDouble);
  group_->allreduce_sum(t, what);
  return t.item<double>();
}

namespace {

// owner[i] of each parameter of decay ++ no_decay: the least-loaded rank so far (by numel)
std::vector<int> zero1_owners(const ParamGroups& g, int world) {
  std::vector<int64_t> load(static_cast<size_t>(world), 0);
  std::vector<int> owner;
  for (const auto* list : {&g.decay, &g.no_decay})
    for (const auto& p : *list) {
      int best = 0;
      for (int r = 1; r < world; ++r)
        if (load[static_cast<size_t>(r)] < load[static_cast<size_t>(best)]) best = r;
      load[static_cast<size_t>(best)] += p.numel();
      owner.push_back(best);
    }
  return owner;
}

}  // namespace

ParamGroups DataParallelStep::zero1_groups(const ParamGroups& g) {
  auto grp = dist::default_group();
  if (!grp || grp->size() <= 1) return g;
  auto owner = zero1_owners(g, grp->size());
  ParamGroups mine;
  size_t i = 0;
  for (size_t k = 0; k < g.decay.size(); ++k, ++i)
    if (owner[i] == grp->rank()) {
      mine.decay.push_back(g.decay[k]);
      if (k < g.decay_names.size()) mine.decay_names.push_back(g.decay_names[k]);
    }
  for (size_t k = 0; k < g.no_decay.size(); ++k, ++i)
    if (owner[i] == grp->rank()) {
      mine.no_decay.push_back(g.no_decay[k]);
      if (k < g.no_decay_names.size()) mine.no_decay_names.push_back(g.no_decay_names[k]);
    }
  return mine;
}

void DataParallelStep::enable_zero1(const ParamGroups& g) {
  auto owner = zero1_owners(g, world());
  owned_by_.assign(static_cast<size_t>(world()), {});
  size_t i = 0;
  for (const auto* list : {&g.decay, &g.no_decay})
    for (const auto& p : *list) owned_by_[static_cast<size_t>(owner[i++])].push_back(p);
}

void DataParallelStep::after_optimizer_step() {
  if (owned_by_.empty()) return;
  // the optimizer's zero_grad() only reaches this rank's share: drop the others' gradients so the
  // next step does not accumulate onto them
  for (int r = 0; r < world(); ++r)
    if (r != rank())
      for (auto& p : owned_by_[static_cast<size_t>(r)]) p.mutable_grad().reset();
  for (int r = 0; r < world(); ++r)
    dist::broadcast_tensors(*group_, owned_by_[static_cast<size_t>(r)], r,
                            "ZeRO-1 broadcast of rank " + std::to_string(r) + "'s parameters (step " +
                                std::to_string(step_ + 1) + ")");
}

}  // namespace rmkit::train
