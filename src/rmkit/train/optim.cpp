#include "rmkit/train/optim.h"

#include <cmath>

#include "rmkit/core/error.h"

namespace rmkit::train {

bool excluded_from_decay(const std::string& name, const torch::Tensor& p) {
  if (p.dim() <= 1) return true;
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  // HF naming: *_layernorm.*, *.norm.*, ln_1/ln_2/ln_f (GPT-2), q_norm/k_norm (Qwen3), *.bias
  return has("norm") || has("ln_") || has(".bias") || name.rfind("bias", 0) == 0;
}

ParamGroups split_param_groups(const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  ParamGroups g;
  for (const auto& [name, p] : named) {
    if (!p.requires_grad()) continue;
    if (excluded_from_decay(name, p)) {
      g.no_decay.push_back(p);
      g.no_decay_names.push_back(name);
    } else {
      g.decay.push_back(p);
      g.decay_names.push_back(name);
    }
  }
  return g;
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const ParamGroups& groups, const OptimConfig& cfg) {
  auto opts = [&](double wd) {
    return torch::optim::AdamWOptions(cfg.lr).betas({cfg.beta1, cfg.beta2}).eps(cfg.eps).weight_decay(wd);
  };
  std::vector<torch::optim::OptimizerParamGroup> pg;
  if (!groups.decay.empty())
    pg.emplace_back(groups.decay, std::make_unique<torch::optim::AdamWOptions>(opts(cfg.weight_decay)));
  if (!groups.no_decay.empty())
    pg.emplace_back(groups.no_decay, std::make_unique<torch::optim::AdamWOptions>(opts(0.0)));
  if (pg.empty()) throw ConfigError("optimizer: no trainable parameters");
  try {
    return std::make_unique<torch::optim::AdamW>(std::move(pg), opts(cfg.weight_decay));
  } catch (const c10::Error& e) {
    // libtorch's own wording ("Invalid beta parameter at index 0: 1.5") with the option's name
    const std::string m = e.what_without_backtrace();
    std::string opt = m.find("beta parameter at index 0") != std::string::npos   ? "--adam-beta1"
                      : m.find("beta parameter at index 1") != std::string::npos ? "--adam-beta2"
                      : m.find("epsilon") != std::string::npos                   ? "--adam-eps"
                      : m.find("weight_decay") != std::string::npos              ? "--weight-decay"
                      : m.find("learning rate") != std::string::npos             ? "--lr"
                                                                                 : "optimizer options";
    std::string first = m.substr(0, m.find('\n'));
    throw UsageError(opt + ": rejected by the AdamW optimizer (" + first + ")");
  }
}

void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

LrSchedule::LrSchedule(double base_lr, int64_t total_steps, int64_t warmup_steps, std::string kind,
                       double min_lr_ratio)
    : base_(base_lr), total_(std::max<int64_t>(1, total_steps)),
      warmup_(std::max<int64_t>(0, warmup_steps)), kind_(std::move(kind)), min_ratio_(min_lr_ratio) {
  if (kind_ != "cosine" && kind_ != "linear" && kind_ != "constant")
    throw ConfigError("--schedule: expected cosine, linear or constant, got '" + kind_ + "'");
  if (min_ratio_ < 0 || min_ratio_ > 1)
    throw ConfigError("--min-lr-ratio: expected a value in [0, 1], got " + std::to_string(min_ratio_));
}

double LrSchedule::lr_at(int64_t step) const {
  if (step < warmup_) return base_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  if (kind_ == "constant") return base_;
  double p = static_cast<double>(step - warmup_) / static_cast<double>(std::max<int64_t>(1, total_ - warmup_));
  p = std::min(1.0, std::max(0.0, p));
  double floor = base_ * min_ratio_;
  if (kind_ == "linear") return floor + (base_ - floor) * (1.0 - p);
  return floor + (base_ - floor) * 0.5 * (1.0 + std::cos(M_PI * p));
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().detach().to(torch::kFloat32).norm(2));
  if (norms.empty()) return 0.0;
  double total = torch::stack(norms).norm(2).item<double>();
  if (max_norm > 0 && std::isfinite(total) && total > max_norm) {
    double scale = max_norm / (total + 1e-6);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return total;
}

}  // namespace rmkit::train
