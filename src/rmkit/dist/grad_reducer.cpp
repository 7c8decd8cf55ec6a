#include "rmkit/dist/grad_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <chrono>
#include <unordered_set>

namespace rmkit::dist {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct ReadyHook : torch::autograd::FunctionPostHook {
  std::function<void()> fn;
  explicit ReadyHook(std::function<void()> f) : fn(std::move(f)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    fn();
    return outputs;
  }
};

}  // namespace

GradReducer::GradReducer(std::shared_ptr<Group> group, std::vector<at::Tensor> params, ReducerOptions opts)
    : group_(std::move(group)), opts_(opts) {
  // one entry per distinct tensor (tied weights appear once)
  std::unordered_set<const void*> seen;
  for (auto& p : params)
    if (p.requires_grad() && seen.insert(p.unsafeGetTensorImpl()).second) params_.push_back(p);
  bucket_of_.assign(params_.size(), 0);
  ready_.assign(params_.size(), 0);
  // reverse registration order: roughly the order in which backward produces the gradients
  Bucket cur;
  size_t cap = opts_.first_bucket_bytes;
  auto close = [&] {
    if (cur.params.empty()) return;
    cur.flat = torch::zeros({cur.numel}, torch::kFloat32);
    buckets_.push_back(std::move(cur));
    cur = Bucket();
    cap = opts_.bucket_cap_bytes;
  };
  for (size_t i = params_.size(); i-- > 0;) {
    const int64_t n = params_[i].numel();
    if (!cur.params.empty() && static_cast<size_t>(cur.numel + n) * 4 > cap) close();
    bucket_of_[i] = buckets_.size();
    cur.params.push_back(i);
    cur.offsets.push_back(cur.numel);
    cur.numel += n;
  }
  close();
  for (const auto& b : buckets_) stats_.bytes += static_cast<size_t>(b.numel) * 4;
  if (opts_.overlap) {
    for (size_t i = 0; i < params_.size(); ++i) {
      std::shared_ptr<torch::autograd::Node> acc = torch::autograd::impl::grad_accumulator(params_[i]);
      uintptr_t key = acc->add_post_hook(std::make_unique<ReadyHook>([this, i] { on_ready(i); }));
      hooks_.emplace_back(std::static_pointer_cast<void>(acc), key);
    }
  }
}

GradReducer::~GradReducer() {
  for (auto& [node, key] : hooks_) std::static_pointer_cast<torch::autograd::Node>(node)->del_post_hook(key);
}

std::vector<std::vector<size_t>> GradReducer::bucket_layout() const {
  std::vector<std::vector<size_t>> out;
  for (const auto& b : buckets_) out.push_back(b.params);
  return out;
}

void GradReducer::prepare(bool sync) {
  std::lock_guard<std::mutex> lk(mu_);
  sync_ = sync;
  if (!sync) return;
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.launched = false;
    b.work.reset();
  }
  std::fill(ready_.begin(), ready_.end(), 0);
  next_launch_ = 0;
  stats_.buckets_launched_in_backward = 0;
}

void GradReducer::on_ready(size_t p) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!sync_ || ready_[p]) return;
  ready_[p] = 1;
  Bucket& b = buckets_[bucket_of_[p]];
  if (b.pending > 0) b.pending -= 1;
  launch_ready_prefix();
}

void GradReducer::launch_ready_prefix() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    launch(next_launch_);
    ++stats_.buckets_launched_in_backward;
    ++next_launch_;
  }
}

void GradReducer::launch(size_t bi) {
  Bucket& b = buckets_[bi];
  torch::NoGradGuard ng;
  for (size_t k = 0; k < b.params.size(); ++k) {
    const at::Tensor& g = params_[b.params[k]].grad();
    auto dst = b.flat.narrow(0, b.offsets[k], params_[b.params[k]].numel());
    if (g.defined()) dst.copy_(g.reshape({-1}));
    else dst.zero_();
  }
  std::vector<at::Tensor> v{b.flat};
  try {
    b.work = group_->allreduce_async(v);
  } catch (const std::exception& e) {
    group_->fail("all-reduce of gradient bucket " + std::to_string(bi + 1) + "/" + std::to_string(buckets_.size()) +
                     (what_.empty() ? "" : " (" + what_ + ")"),
                 e.what());
  }
  b.launched = true;
}

void GradReducer::finish(const std::string& what) {
  const double t0 = now_s();
  std::lock_guard<std::mutex> lk(mu_);
  what_ = what;
  if (!sync_) throw DistError("GradReducer::finish without prepare(sync = true)");
  for (size_t bi = next_launch_; bi < buckets_.size(); ++bi) launch(bi);
  next_launch_ = buckets_.size();
  const double inv = 1.0 / group_->size();
  torch::NoGradGuard ng;
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    Bucket& b = buckets_[bi];
    group_->wait(b.work, "all-reduce of gradient bucket " + std::to_string(bi + 1) + "/" +
                             std::to_string(buckets_.size()) + " (" + what + ")");
    b.work.reset();
    b.flat.mul_(inv);
    for (size_t k = 0; k < b.params.size(); ++k) {
      at::Tensor& p = params_[b.params[k]];
      auto src = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      at::Tensor& g = p.mutable_grad();
      if (g.defined()) {
        g.copy_(src);
      } else if (src.abs().max().item<float>() != 0.0f) {
        g = src.to(p.scalar_type()).clone();  // another rank produced a gradient for it
      }
      // (no gradient on any rank: left undefined, as one process would leave it)
    }
  }
  sync_ = false;
  ++step_;
  stats_.finish_wait_s = now_s() - t0;
}

void broadcast_tensors(Group& g, const std::vector<at::Tensor>& tensors, int root, const std::string& what) {
  if (g.size() <= 1 || tensors.empty()) return;
  torch::NoGradGuard ng;
  // one flat buffer per dtype, in chunks of <= 64 MiB
  std::map<at::ScalarType, std::vector<at::Tensor>> by_type;
  for (const auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [dt, ts] : by_type) {
    size_t i = 0;
    while (i < ts.size()) {
      std::vector<at::Tensor> chunk;
      int64_t bytes = 0;
      while (i < ts.size() && (chunk.empty() || bytes + ts[i].nbytes() <= (64 << 20))) {
        bytes += static_cast<int64_t>(ts[i].nbytes());
        chunk.push_back(ts[i++]);
      }
      std::vector<at::Tensor> flat_views;
      for (auto& t : chunk) flat_views.push_back(t.detach().reshape({-1}));
      std::vector<at::Tensor> flat{torch::cat(flat_views)};
      g.broadcast(flat, root, what);
      int64_t off = 0;
      for (auto& t : chunk) {
        t.detach().copy_(flat[0].narrow(0, off, t.numel()).view(t.sizes()));
        off += t.numel();
      }
    }
  }
}

}  // namespace rmkit::dist
