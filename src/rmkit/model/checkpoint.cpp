// load_pretrained / save_pretrained: whole-checkpoint IO on top of safetensors.cpp (tensors),
// config.cpp (config.json), registry.cpp (family -> module) and load_state (tensor -> parameter).
#include "rmkit/model/checkpoint.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/registry.h"
#include "rmkit/model/safetensors.h"
#include "rmkit/model/tensor_names.h"

namespace rmkit::model {
namespace fs = std::filesystem;
namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

bool dir_has_tokenizer(const std::string& dir) {
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer.bin"})
    if (path_exists(join_path(dir, f))) return true;
  return false;
}

// Tensors of an HF directory: model.safetensors, else the sharded index.
TensorMap read_dir_tensors(const std::string& dir) {
  const std::string single = join_path(dir, "model.safetensors");
  const std::string index = join_path(dir, "model.safetensors.index.json");
  if (path_exists(single)) return read_safetensors(single);
  if (path_exists(index)) return read_safetensors_index(index);
  std::string hint;
  if (path_exists(join_path(dir, "pytorch_model.bin")))
    hint = " (pytorch_model.bin is not supported; convert it to safetensors)";
  throw IoError(dir + ": no model.safetensors or model.safetensors.index.json" + hint);
}

// Name under which a tokenizer source file is stored in a saved directory.
std::string saved_tokenizer_name(const std::string& src) {
  if (ends_with(src, ".model")) return "tokenizer.model";  // SentencePiece
  if (ends_with(src, ".bin")) return "tokenizer.bin";      // llama2.c export
  return file_name(src);  // tokenizer.json, tokenizer_config.json, encoder.json, vocab.bpe, ...
}

// Writes every file of the checkpoint into `dir` (a fresh temp directory).
void write_checkpoint_files(const std::string& dir, const ModelConfig& cfg, CausalLMImpl& model,
                            const text::Tokenizer* tokenizer, const TensorMap& extra,
                            const std::string& dtype) {
  ModelConfig c = cfg;
  if (!dtype.empty()) {
    c.torch_dtype = dtype;
  } else {
    auto st = model.embedding_weight().scalar_type();
    c.torch_dtype = st == torch::kBFloat16 ? "bfloat16" : st == torch::kFloat16 ? "float16" : "float32";
  }
  write_file_atomic(join_path(dir, "config.json"), c.to_json().dump(2) + "\n");

  // Parameters are the HF names; a tied LM head is the embedding and is omitted as HF does.
  TensorMap tensors;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (c.tie_word_embeddings && item.key() == "lm_head.weight") continue;
    if (item.key().find(".lora_A.") != std::string::npos || item.key().find(".lora_B.") != std::string::npos)
      throw ConfigError(dir + ": the model has LoRA adapters attached (" + item.key() +
                        "): merge_lora them into the weights or save them with save_lora (lora.h)");
    tensors[item.key()] = item.value();
  }
  for (const auto& item : model.named_buffers(/*recurse=*/true))
    if (!is_ignorable_buffer_name(c.family, item.key())) tensors[item.key()] = item.value();
  for (const auto& [name, t] : extra) {
    if (tensors.count(name))
      throw ConfigError(dir + ": extra tensor '" + name + "' collides with a model parameter");
    tensors[name] = t;
  }
  write_safetensors(join_path(dir, "model.safetensors"), tensors, {{"format", "pt"}}, dtype);

  nlohmann::json gen = {{"_from_model_config", true}};
  if (c.bos_token_id >= 0) gen["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) gen["eos_token_id"] = c.eos_token_id;
  if (c.pad_token_id >= 0) gen["pad_token_id"] = c.pad_token_id;
  write_file_atomic(join_path(dir, "generation_config.json"), gen.dump(2) + "\n");

  if (!tokenizer) return;
  bool wrote_config = false;
  for (const auto& src : tokenizer->source_files()) {
    const std::string name = saved_tokenizer_name(src);
    write_file_atomic(join_path(dir, name), read_file(src));
    if (name == "tokenizer_config.json") wrote_config = true;
  }
  if (!wrote_config) {
    // Minimal tokenizer_config.json so BOS/EOS strings travel with the checkpoint.
    nlohmann::json tc = nlohmann::json::object();
    if (tokenizer->bos_id() >= 0) tc["bos_token"] = tokenizer->piece(tokenizer->bos_id());
    if (tokenizer->eos_id() >= 0) tc["eos_token"] = tokenizer->piece(tokenizer->eos_id());
    if (tokenizer->pad_id() >= 0) tc["pad_token"] = tokenizer->piece(tokenizer->pad_id());
    if (!tokenizer->chat_template_source().empty()) tc["chat_template"] = tokenizer->chat_template_source();
    tc["model_max_length"] = c.max_position_embeddings;
    write_file_atomic(join_path(dir, "tokenizer_config.json"),
                      tc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
}

}  // namespace

LoadedModel load_pretrained(const std::string& path, const std::string& tokenizer_path) {
  if (!path_exists(path)) throw IoError(path + ": no such model directory or file");
  LoadedModel out;
  out.source = path;
  TensorMap tensors;
  if (is_directory(path)) {
    const std::string cfg_path = join_path(path, "config.json");
    if (!path_exists(cfg_path)) throw IoError(path + ": model directory has no config.json");
    out.config = ModelConfig::from_file(cfg_path);
    tensors = read_dir_tensors(path);
  } else {
    // Anything that is not a directory is taken as a llama2.c legacy checkpoint.
    read_llama2c(path, &out.config, &tensors);
  }
  out.model = create_model(out.config);
  out.extra_tensors = load_state(*out.model, tensors, {"score."});
  out.model->eval();

  if (!tokenizer_path.empty()) out.tokenizer = text::load_tokenizer(tokenizer_path);
  else if (is_directory(path) && dir_has_tokenizer(path)) out.tokenizer = text::load_tokenizer(path);
  return out;
}

void write_dir_atomic(const std::string& dir, const std::function<void(const std::string& tmp)>& write) {
  if (dir.empty()) throw UsageError("write_dir_atomic: empty output directory");
  std::string target = dir;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (path_exists(target) && !is_directory(target))
    throw IoError(target + ": exists and is not a directory");
  const std::string pid = std::to_string(::getpid());
  const std::string tmp = target + ".tmp." + pid;
  std::error_code ec;
  fs::remove_all(tmp, ec);
  const std::string parent = parent_dir(target);
  if (!parent.empty()) make_dirs(parent);
  make_dirs(tmp);
  try {
    write(tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);  // the previous checkpoint (if any) is untouched
    throw;
  }
  // Swap in: move any previous directory aside, rename the new one over, then delete the old one.
  std::string old;
  if (path_exists(target)) {
    old = target + ".old." + pid;
    fs::remove_all(old, ec);
    if (std::rename(target.c_str(), old.c_str()) != 0) {
      int err = errno;
      fs::remove_all(tmp, ec);
      throw IoError(target + ": cannot move the previous checkpoint aside: " + std::strerror(err));
    }
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    if (!old.empty()) std::rename(old.c_str(), target.c_str());
    fs::remove_all(tmp, ec);
    throw IoError(target + ": cannot rename " + tmp + " into place: " + std::strerror(err));
  }
  if (!old.empty()) fs::remove_all(old, ec);
}

void save_pretrained(const std::string& dir, const ModelConfig& cfg, CausalLMImpl& model,
                     const text::Tokenizer* tokenizer, const TensorMap& extra, const std::string& dtype) {
  write_dir_atomic(dir, [&](const std::string& tmp) { write_checkpoint_files(tmp, cfg, model, tokenizer, extra, dtype); });
}

}  // namespace rmkit::model
