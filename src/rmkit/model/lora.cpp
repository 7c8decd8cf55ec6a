// LoRA: the --lora string, target matching, attach / merge and the adapter parameter list.
// PEFT save / load is in lora_io.cpp.
#include "rmkit/model/lora.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>

#include "rmkit/core/error.h"
#include "rmkit/model/lora_layer.h"

namespace rmkit::model {

namespace {

const std::vector<std::string>& short_target_names() {
  static const std::vector<std::string> n = {"q", "k", "v", "o", "gate", "up", "down"};
  return n;
}

bool is_short_name(const std::string& t) {
  const auto& n = short_target_names();
  return std::find(n.begin(), n.end(), t) != n.end();
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string fmt_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

bool valid_module_name(const std::string& t) {
  if (t.empty() || t.front() == '.' || t.back() == '.') return false;
  return std::all_of(t.begin(), t.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; });
}

}  // namespace

// ----------------------------------------------------------------------------------- config

LoraConfig LoraConfig::parse(const std::string& spec, const std::string& what) {
  LoraConfig c;
  const std::string w = what + ": ";
  if (trim(spec).empty()) throw UsageError(w + "empty (expected e.g. r=16,alpha=32,dropout=0.1,targets=q,v)");
  auto bad = [&](const std::string& field, const std::string& expected, const std::string& got) {
    return UsageError(w + "field '" + field + "': expected " + expected + ", got '" + clip_text(got, 80) + "'");
  };
  std::set<std::string> seen;
  std::string current;
  bool targets_given = false;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string tok = trim(spec.substr(start, comma - start));
    start = comma + 1;
    const size_t eq = tok.find('=');
    std::string key, val;
    if (eq == std::string::npos) {
      if (current != "targets")
        throw UsageError(w + "expected key=value (r, alpha, dropout, targets), got '" + clip_text(tok, 80) + "'");
      key = "targets";
      val = tok;
    } else {
      key = trim(tok.substr(0, eq));
      val = trim(tok.substr(eq + 1));
      if (key != "r" && key != "alpha" && key != "dropout" && key != "targets")
        throw UsageError(w + "unknown field '" + clip_text(key, 80) + "' (expected r, alpha, dropout, targets)");
      if (!seen.insert(key).second) throw UsageError(w + "field '" + key + "' given twice");
      current = key;
    }
    if (key == "r") {
      size_t used = 0;
      long long r = 0;
      try {
        r = std::stoll(val, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != val.size() || r < 1 || r > 65536) throw bad("r", "an integer in [1, 65536]", val);
      c.r = r;
    } else if (key == "alpha" || key == "dropout") {
      size_t used = 0;
      double d = 0;
      try {
        d = std::stod(val, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      const bool ok_num = used != 0 && used == val.size() && std::isfinite(d);
      if (key == "alpha") {
        if (!ok_num || d <= 0) throw bad("alpha", "a number > 0", val);
        c.alpha = d;
      } else {
        if (!ok_num || d < 0 || d >= 1) throw bad("dropout", "a number in [0, 1)", val);
        c.dropout = d;
      }
    } else {  // targets
      if (!valid_module_name(val))
        throw bad("targets", "q, k, v, o, gate, up, down or a module name suffix (letters, digits, '_', '.')", val);
      if (!targets_given) c.targets.clear();
      targets_given = true;
      if (std::find(c.targets.begin(), c.targets.end(), val) == c.targets.end()) c.targets.push_back(val);
    }
  }
  return c;
}

std::string LoraConfig::to_string() const {
  std::string s = "r=" + std::to_string(r) + ",alpha=" + fmt_double(alpha) + ",dropout=" + fmt_double(dropout) + ",targets=";
  for (size_t i = 0; i < targets.size(); ++i) s += (i ? "," : "") + targets[i];
  return s;
}

// ---------------------------------------------------------------------------------- matching

namespace {

// Which projections cfg.targets select. Short names (q, k, ...) are recognised unless
// suffixes_only (a PEFT adapter_config's target_modules are always module-name suffixes).
LoraSummary match_targets(const std::vector<ProjectionRef>& refs, const LoraConfig& cfg, const std::string& family,
                          bool suffixes_only, std::vector<bool>* selected) {
  if (refs.empty()) throw ConfigError("lora: the " + family + " model family has no LoRA support");
  if (cfg.targets.empty()) throw ConfigError("lora: no targets");
  selected->assign(refs.size(), false);
  std::set<std::string> target_modules;
  for (const auto& t : cfg.targets) {
    const bool short_name = !suffixes_only && is_short_name(t);
    bool any = false;
    for (size_t i = 0; i < refs.size(); ++i) {
      const auto& n = refs[i].name;
      const bool hit = short_name ? std::count(refs[i].short_names.begin(), refs[i].short_names.end(), t) > 0
                                  : n == t || (n.size() > t.size() && n.compare(n.size() - t.size(), t.size(), t) == 0 &&
                                               n[n.size() - t.size() - 1] == '.');
      if (!hit) continue;
      (*selected)[i] = true;
      any = true;
      target_modules.insert(short_name ? refs[i].suffix : t);
    }
    if (!any) {
      std::set<std::string> kinds;
      for (const auto& r : refs) kinds.insert(r.suffix);
      std::string list;
      for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
      throw ConfigError("lora targets: '" + t + "' matches no projection of this " + family + " model (its projections: " +
                        list + (suffixes_only ? ")" : "; short names q, k, v, o, gate, up, down)"));
    }
  }
  LoraSummary s;
  s.target_modules.assign(target_modules.begin(), target_modules.end());
  for (size_t i = 0; i < refs.size(); ++i)
    if ((*selected)[i]) s.modules.push_back(refs[i].name);
  return s;
}

void validate(const LoraConfig& cfg) {
  if (cfg.r < 1) throw ConfigError("lora: r must be >= 1, got " + std::to_string(cfg.r));
  if (!(cfg.alpha > 0) || !std::isfinite(cfg.alpha)) throw ConfigError("lora: alpha must be > 0, got " + fmt_double(cfg.alpha));
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw ConfigError("lora: dropout must be in [0, 1), got " + fmt_double(cfg.dropout));
}

}  // namespace

LoraSummary match_lora_targets(CausalLMImpl& model, const LoraConfig& cfg, bool suffixes_only) {
  std::vector<bool> selected;
  return match_targets(model.projections(), cfg, model.config().family, suffixes_only, &selected);
}

bool has_lora(CausalLMImpl& model) {
  for (const auto& r : model.projections())
    if (*r.slot) return true;
  return false;
}

LoraSummary attach_lora(CausalLMImpl& model, const LoraConfig& cfg, uint64_t seed, bool suffixes_only) {
  validate(cfg);
  auto refs = model.projections();
  std::vector<bool> selected;
  LoraSummary s = match_targets(refs, cfg, model.config().family, suffixes_only, &selected);
  if (has_lora(model)) throw ConfigError("lora: the model already has adapters attached (merge_lora first)");
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  auto gen = at::detail::createCPUGenerator(seed);
  for (size_t i = 0; i < refs.size(); ++i) {
    if (!selected[i]) continue;
    const ProjectionRef& ref = refs[i];
    const auto& W = ref.weight;
    const int64_t in = ref.fan_in_fan_out ? W.size(0) : W.size(1), out = ref.fan_in_fan_out ? W.size(1) : W.size(0);
    // PEFT: kaiming_uniform_(A, a=sqrt(5)) -> U(-1/sqrt(in), 1/sqrt(in)); B = 0.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    auto a0 = torch::empty({cfg.r, in}, torch::kFloat32).uniform_(-bound, bound, gen).to(W.options());
    auto b0 = torch::zeros({out, cfg.r}, W.options());
    auto a_mod = std::make_shared<torch::nn::Module>(), b_mod = std::make_shared<torch::nn::Module>();
    auto lora = std::make_shared<LoraAdapter>();
    lora->A = a_mod->register_parameter("weight", a0, /*requires_grad=*/true);  // [r, in]
    lora->B = b_mod->register_parameter("weight", b0, /*requires_grad=*/true);  // [out, r]
    lora->scale = cfg.scale();
    lora->dropout = cfg.dropout;
    if (!model.is_training()) {
      a_mod->eval();
      b_mod->eval();
    }
    ref.module->register_module("lora_A", a_mod);
    ref.module->register_module("lora_B", b_mod);
    *ref.slot = lora;
    s.adapter_parameters += lora->A.numel() + lora->B.numel();
  }
  return s;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(CausalLMImpl& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& r : model.projections()) {
    if (!*r.slot) continue;
    out.emplace_back(r.name + ".lora_A.weight", (*r.slot)->A);
    out.emplace_back(r.name + ".lora_B.weight", (*r.slot)->B);
  }
  return out;
}

std::vector<std::string> merge_lora(CausalLMImpl& model) {
  torch::NoGradGuard ng;
  std::vector<std::string> merged;
  for (const auto& r : model.projections()) {
    if (!*r.slot) continue;
    auto W = r.weight;
    const auto acc = at::promote_types(W.scalar_type(), torch::kFloat32);  // bf16/fp16 weights: sum in float32
    auto d = (*r.slot)->delta_weight().to(acc);  // [out, in]
    if (r.fan_in_fan_out) d = d.t();             // Conv1D stores [in, out]
    W.copy_(W.to(acc) + d);                      // rounded once to W's dtype
    r.module->unregister_module("lora_A");
    r.module->unregister_module("lora_B");
    r.slot->reset();
    merged.push_back(r.name);
  }
  return merged;
}

}  // namespace rmkit::model
