// Checkpoint IO: HF directories (config.json + safetensors, single or sharded), llama2.c .bin, and
// writing HF-layout directories. All loads validate every tensor and report every problem at once.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "rmkit/model/causal_lm.h"
#include "rmkit/text/tokenizer.h"

namespace rmkit::model {

struct LoadedModel {
  ModelConfig config;
  CausalLMPtr model;
  std::unique_ptr<text::Tokenizer> tokenizer;  // null when none was found / given
  TensorMap extra_tensors;                     // tensors not belonging to the LM (e.g. "score.weight")
  std::string source;                          // path loaded from
};

// Copies `tensors` into model's parameters/buffers. Throws ShapeError listing every missing,
// unexpected and mis-shaped tensor in one message. Names in `allow_unexpected_prefixes` are
// returned instead of rejected (e.g. {"score."} for reward heads). Converts dtypes to the
// parameter's dtype.
TensorMap load_state(CausalLMImpl& model, const TensorMap& tensors,
                     const std::vector<std::string>& allow_unexpected_prefixes = {});

// Loads a model directory (config.json + model.safetensors or model.safetensors.index.json + shards,
// tokenizer files if present) or a llama2.c .bin (tokenizer_path required for a tokenizer).
LoadedModel load_pretrained(const std::string& path, const std::string& tokenizer_path = "");

// Reads a llama2.c legacy checkpoint into HF-named tensors (q/k left in interleaved RoPE order;
// cfg.rope_interleaved = true).
void read_llama2c(const std::string& path, ModelConfig* cfg, TensorMap* tensors);

// Permutes q/k projection rows from interleaved-pair RoPE order to HF half-split order
// (as HF's convert_llama_weights_to_hf does). w: [n_heads*head_dim, in].
torch::Tensor permute_rope_to_half_split(const torch::Tensor& w, int64_t n_heads);

// Writes an HF-layout directory atomically (temp dir, then rename): config.json, model.safetensors,
// and the tokenizer's source files (a SentencePiece .model is written as tokenizer.model).
// `extra` tensors (e.g. "score.weight") are written beside the model's parameters.
void save_pretrained(const std::string& dir, const ModelConfig& cfg, CausalLMImpl& model,
                     const text::Tokenizer* tokenizer, const TensorMap& extra = {},
                     const std::string& dtype = "float32");

// Writes a directory atomically: write(tmp) fills a fresh temp directory beside `dir`, which is
// then renamed over `dir` (a previous `dir` is moved aside first and deleted after). If write
// throws, the temp directory is removed and any previous `dir` is untouched.
void write_dir_atomic(const std::string& dir, const std::function<void(const std::string& tmp)>& write);

}  // namespace rmkit::model
