// save_lora / load_lora: PEFT's LoRA directory layout.
//   adapter_config.json          {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout",
//                                 "target_modules", "base_model_name_or_path", "fan_in_fan_out", ...}
//   adapter_model.safetensors    "base_model.model.<module>.lora_A.weight" [r, in],
//                                "base_model.model.<module>.lora_B.weight" [out, r]
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/lora.h"
#include "rmkit/model/safetensors.h"

namespace rmkit::model {

namespace {
const char* const kConfigFile = "adapter_config.json";
const char* const kWeightsFile = "adapter_model.safetensors";

nlohmann::json number_json(double v) {  // 32 rather than 32.0 for whole numbers (as PEFT writes)
  if (std::floor(v) == v && std::fabs(v) < 1e15) return static_cast<int64_t>(v);
  return v;
}
}  // namespace

std::string peft_tensor_name(const std::string& param_name) { return "base_model.model." + param_name; }

void save_lora(const std::string& dir, CausalLMImpl& model, const LoraConfig& cfg,
               const std::string& base_model_name_or_path) {
  auto params = lora_parameters(model);
  if (params.empty()) throw ConfigError(dir + ": save_lora: the model has no LoRA adapters");
  const LoraSummary s = match_lora_targets(model, cfg);
  std::vector<std::string> attached;
  bool fan_in_fan_out = false;
  for (const auto& r : model.projections())
    if (*r.slot) {
      attached.push_back(r.name);
      fan_in_fan_out = fan_in_fan_out || r.fan_in_fan_out;
    }
  if (attached != s.modules)
    throw ConfigError(dir + ": save_lora: the model's " + std::to_string(attached.size()) +
                      " adapters are not the projections the config's targets select (" + cfg.to_string() + ")");
  nlohmann::json j = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model_name_or_path},
      {"r", cfg.r},
      {"lora_alpha", number_json(cfg.alpha)},
      {"lora_dropout", cfg.dropout},
      {"target_modules", s.target_modules},
      {"fan_in_fan_out", fan_in_fan_out},
      {"bias", "none"},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"use_rslora", false},
      {"use_dora", false},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
  };
  TensorMap tensors;
  for (const auto& [name, t] : params) tensors[peft_tensor_name(name)] = t.detach().to(torch::kCPU).contiguous();
  write_dir_atomic(dir, [&](const std::string& tmp) {
    write_file_atomic(join_path(tmp, kConfigFile), j.dump(2) + "\n");
    write_safetensors(join_path(tmp, kWeightsFile), tensors, {{"format", "pt"}});
  });
}

namespace {

LoraConfig read_adapter_config(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object()) throw FormatError(path + ": expected a JSON object");
  auto field = [&](const std::string& k) -> std::string { return path + ": field '" + k + "': "; };
  if (j.contains("peft_type") && j["peft_type"] != "LORA")
    throw ConfigError(field("peft_type") + "expected \"LORA\", got " + j["peft_type"].dump());
  for (const char* k : {"use_dora", "use_rslora"})
    if (j.contains(k) && j[k].is_boolean() && j[k].get<bool>()) throw ConfigError(field(k) + "true is not supported");
  if (j.contains("bias") && j["bias"].is_string() && j["bias"] != "none")
    throw ConfigError(field("bias") + "only \"none\" is supported, got " + j["bias"].dump());
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (j.contains(k) && j[k].is_object() && !j[k].empty()) throw ConfigError(field(k) + "per-module patterns are not supported");
  for (const char* k : {"layers_to_transform", "modules_to_save"})
    if (j.contains(k) && !j[k].is_null() && !(j[k].is_array() && j[k].empty()))
      throw ConfigError(field(k) + "not supported, got " + clip_text(j[k].dump(), 80));
  LoraConfig c;
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() < 1)
    throw FormatError(field("r") + "expected an integer >= 1");
  c.r = j["r"].get<int64_t>();
  if (!j.contains("lora_alpha") || !j["lora_alpha"].is_number() || !(j["lora_alpha"].get<double>() > 0))
    throw FormatError(field("lora_alpha") + "expected a number > 0");
  c.alpha = j["lora_alpha"].get<double>();
  if (j.contains("lora_dropout")) {
    if (!j["lora_dropout"].is_number()) throw FormatError(field("lora_dropout") + "expected a number in [0, 1)");
    c.dropout = j["lora_dropout"].get<double>();
    if (!(c.dropout >= 0 && c.dropout < 1)) throw FormatError(field("lora_dropout") + "expected a number in [0, 1)");
  }
  const auto& tm = j.contains("target_modules") ? j["target_modules"] : nlohmann::json();
  if (tm.is_string()) throw ConfigError(field("target_modules") + "a regular expression is not supported (give a list)");
  if (!tm.is_array() || tm.empty()) throw FormatError(field("target_modules") + "expected a non-empty list of module names");
  c.targets.clear();
  for (const auto& t : tm) {
    if (!t.is_string()) throw FormatError(field("target_modules") + "expected strings, got " + t.dump());
    c.targets.push_back(t.get<std::string>());
  }
  return c;
}

}  // namespace

LoraSummary load_lora(const std::string& dir, CausalLMImpl& model, LoraConfig* cfg_out) {
  const std::string cfg_path = join_path(dir, kConfigFile), st_path = join_path(dir, kWeightsFile);
  if (!is_directory(dir)) throw IoError(dir + ": no such adapter directory");
  if (!path_exists(cfg_path)) throw IoError(dir + ": no " + kConfigFile + " (not a PEFT adapter directory)");
  if (!path_exists(st_path))
    throw IoError(dir + ": no " + kWeightsFile +
                  (path_exists(join_path(dir, "adapter_model.bin")) ? " (adapter_model.bin is not supported; save with safetensors)" : ""));
  const LoraConfig cfg = read_adapter_config(cfg_path);
  const TensorMap tensors = read_safetensors(st_path);
  LoraSummary s = attach_lora(model, cfg, /*seed=*/0, /*suffixes_only=*/true);
  std::string problems;
  int n_problems = 0;
  auto note = [&](const std::string& p) {
    if (++n_problems <= 8) problems += (problems.empty() ? " " : "; ") + p;
  };
  std::set<std::string> expected;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (parameter, stored)
  for (const auto& [name, p] : lora_parameters(model)) {
    const std::string key = peft_tensor_name(name);
    expected.insert(key);
    auto it = tensors.find(key);
    if (it == tensors.end()) {
      note("missing " + key);
    } else if (it->second.sizes() != p.sizes()) {
      note(key + " has shape " + c10::str(it->second.sizes()) + ", expected " + c10::str(p.sizes()));
    } else {
      copies.emplace_back(p, it->second);
    }
  }
  for (const auto& [key, t] : tensors)
    if (!expected.count(key)) note("unexpected " + key);
  if (n_problems > 0) {
    merge_lora(model);  // undo the attach (B = 0: the weights are unchanged)
    if (n_problems > 8) problems += "; ... (" + std::to_string(n_problems - 8) + " more)";
    throw ShapeError(st_path + ": adapter tensors do not match the model:" + problems);
  }
  torch::NoGradGuard ng;
  for (auto& [p, t] : copies) p.copy_(t.to(p.scalar_type()));
  if (cfg_out) *cfg_out = cfg;
  return s;
}

}  // namespace rmkit::model
