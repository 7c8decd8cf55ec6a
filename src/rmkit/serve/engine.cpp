#include "rmkit/serve/engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <unordered_map>

#include "rmkit/core/error.h"
#include "rmkit/model/decode_gemm.h"
#include "rmkit/serve/detokenizer.h"
#include "rmkit/serve/http_error.h"
#include "rmkit/train/autocast.h"

namespace rmkit::serve {

using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------------------------ handle

void GenHandle::push(GenEvent ev) {
  if (!stream_) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    events_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

void GenHandle::finish(std::string error) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!error.empty()) error_ = std::move(error);
    done_ = true;
  }
  cv_.notify_all();
}

std::string GenHandle::error() const {
  std::lock_guard<std::mutex> lk(mu_);
  return error_;
}

bool GenHandle::next_event(GenEvent* ev, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_until(lk, deadline, [&] { return !events_.empty() || done_; });
  if (events_.empty()) return false;
  *ev = std::move(events_.front());
  events_.pop_front();
  return true;
}

bool GenHandle::drained() {
  std::lock_guard<std::mutex> lk(mu_);
  return done_ && events_.empty();
}

bool GenHandle::wait(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lk(mu_);
  if (cv_.wait_until(lk, deadline, [&] { return done_; })) return true;
  cancelled_ = true;
  return false;
}

// ------------------------------------------------------------------------------------ engine

struct Engine::Sample {
  int64_t index = 0;
  std::shared_ptr<model::SeqKV> kv;
  std::mt19937_64 rng;
  std::vector<int32_t> out;
  std::unordered_map<int32_t, int64_t> counts;
  std::vector<char> seen;
  std::unique_ptr<StreamText> text;
  int32_t pending = -1;  // token to feed at the next step
  bool finished = false;
  Clock::time_point last_token;
  Completion result;
};

struct Engine::Request {
  std::shared_ptr<GenHandle> h;
  std::vector<int32_t> prompt;
  SamplingParams p;
  std::shared_ptr<model::SeqKV> prompt_kv;
  int64_t prefilled = 0;
  int64_t reserved = 0;
  int64_t max_new = 0;
  std::vector<Sample> samples;
  int64_t unfinished = 0;
  bool allocated = false;
  Clock::time_point submitted;
  bool prefill_done() const { return prefilled == static_cast<int64_t>(prompt.size()); }
};

Engine::Engine(model::CausalLMPtr model, std::shared_ptr<const text::Tokenizer> tok, EngineConfig cfg,
               MetricsRegistry* metrics, std::mutex* compute_mutex, std::string name)
    : model_(std::move(model)), tok_(std::move(tok)), cfg_(cfg), metrics_(metrics),
      compute_mu_(compute_mutex ? compute_mutex : &own_compute_mu_), name_(std::move(name)) {
  const auto& mc = model_->config();
  ctx_len_ = mc.max_position_embeddings;
  vocab_ = mc.vocab_size;
  bytes_per_token_ = model::SeqKV::bytes_per_token(mc);
  eos_ids_ = tok_->stop_ids();
  for (auto id : mc.eos_token_ids)
    if (std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end()) eos_ids_.push_back(static_cast<int32_t>(id));
  if (mc.eos_token_id >= 0 && std::find(eos_ids_.begin(), eos_ids_.end(), mc.eos_token_id) == eos_ids_.end())
    eos_ids_.push_back(static_cast<int32_t>(mc.eos_token_id));
  if (cfg_.threads <= 0) cfg_.threads = at::get_num_threads();
  model_->eval();
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { stop(); }

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Engine::Stats Engine::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

std::shared_ptr<GenHandle> Engine::submit(std::vector<int32_t> prompt, SamplingParams p, bool stream) {
  p.validate(vocab_);
  const int64_t P = static_cast<int64_t>(prompt.size());
  if (P == 0) throw HttpError::bad_request("prompt: no token to condition on", "prompt");
  for (int32_t id : prompt)
    if (id < 0 || id >= vocab_)
      throw HttpError::bad_request("prompt: token id " + std::to_string(id) + " outside the vocabulary", "prompt");
  if (P >= ctx_len_)
    throw HttpError::bad_request("prompt: " + std::to_string(P) + " tokens, the model's context is " +
                                     std::to_string(ctx_len_) + " (no room for a new token)",
                                 "prompt");
  auto r = std::make_shared<Request>();
  r->h = std::make_shared<GenHandle>();
  r->h->stream_ = stream;
  r->h->prompt_tokens = P;
  r->max_new = std::min(p.max_tokens, ctx_len_ - P);
  const int64_t budget = cfg_.kv_cache_mb * 1024 * 1024;
  if (p.max_tokens_default && bytes_per_token_ > 0) {  // as many as the budget holds for n samples
    const int64_t fits = (budget / bytes_per_token_ - P) / std::max<int64_t>(1, p.n);
    if (fits >= 1) r->max_new = std::min(r->max_new, fits);
  }
  r->reserved = bytes_per_token_ * (P + p.n * r->max_new);
  r->prompt = std::move(prompt);
  r->p = std::move(p);
  r->submitted = Clock::now();
  if (r->reserved > budget)
    throw HttpError::bad_request("request needs " + std::to_string(r->reserved / (1024 * 1024) + 1) +
                                     " MB of KV cache (prompt + n * max_tokens), more than --kv-cache-mb " +
                                     std::to_string(cfg_.kv_cache_mb),
                                 "max_tokens");
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw HttpError::overloaded("server is shutting down");
    if (static_cast<int64_t>(waiting_.size()) >= cfg_.max_queue)
      throw HttpError::overloaded("generation queue full: " + std::to_string(waiting_.size()) +
                                  " requests waiting (--max-queue); retry later");
    waiting_.push_back(r);
    stats_.waiting = static_cast<int64_t>(waiting_.size());
  }
  cv_.notify_all();
  return r->h;
}

std::vector<std::vector<Completion>> Engine::generate_many(const std::vector<std::vector<int32_t>>& prompts,
                                                           const std::vector<SamplingParams>& params) {
  if (prompts.size() != params.size()) throw UsageError("generate_many: one SamplingParams per prompt");
  std::vector<std::shared_ptr<GenHandle>> hs;
  std::vector<std::vector<Completion>> out(prompts.size());
  size_t next = 0, done = 0;
  // keep the queue bounded: submit as room frees up
  while (done < prompts.size()) {
    while (next < prompts.size()) {
      try {
        hs.push_back(submit(prompts[next], params[next]));
        ++next;
      } catch (const HttpError& e) {
        if (e.status != 503) throw Error("generate: request " + std::to_string(next) + ": " + e.message);
        break;
      }
    }
    hs[done]->wait(Clock::time_point::max());
    if (const std::string e = hs[done]->error(); !e.empty()) throw Error("generate: request " + std::to_string(done) + ": " + e);
    out[done] = std::move(hs[done]->results);
    hs[done].reset();
    ++done;
  }
  return out;
}

bool Engine::admit(std::vector<std::shared_ptr<Request>>& running) {
  // called with mu_ held
  bool any = false;
  int64_t seqs = 0;
  for (const auto& r : running) seqs += r->prefill_done() ? r->unfinished : 1;
  const int64_t budget = cfg_.kv_cache_mb * 1024 * 1024;
  while (!waiting_.empty()) {
    auto& r = waiting_.front();
    if (r->h->cancelled()) {
      r->h->finish();
      waiting_.pop_front();
      continue;
    }
    if (stats_.kv_bytes_reserved + r->reserved > budget) break;  // first come, first served
    if (!running.empty() && seqs + r->p.n > cfg_.max_running) break;
    stats_.kv_bytes_reserved += r->reserved;
    seqs += r->p.n;
    running.push_back(r);
    waiting_.pop_front();
    any = true;
  }
  stats_.waiting = static_cast<int64_t>(waiting_.size());
  stats_.running = static_cast<int64_t>(running.size());
  if (metrics_) metrics_->set("rmkit_kv_cache_bytes", static_cast<double>(stats_.kv_bytes_reserved), {{"model", name_}});
  return any;
}

void Engine::loop() {
  if (cfg_.threads > 0) at::set_num_threads(cfg_.threads);
  model::DecodeGemmScope decode_gemm(cfg_.decode_gemm);
  std::vector<std::shared_ptr<Request>> running;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !running.empty() || !waiting_.empty(); });
      if (stopping_) {
        for (auto& r : waiting_) r->h->finish("engine stopped");
        waiting_.clear();
        for (auto& r : running) r->h->finish("engine stopped");
        return;
      }
      admit(running);
    }
    try {
      step(running);
    } catch (const std::exception& e) {
      std::string m = e.what();
      if (auto nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
      std::lock_guard<std::mutex> lk(mu_);
      for (auto& r : running) {
        stats_.kv_bytes_reserved -= r->reserved;
        r->h->finish("generation failed: " + m);
      }
      running.clear();
    }
    std::lock_guard<std::mutex> lk(mu_);
    stats_.running = static_cast<int64_t>(running.size());
  }
}

void Engine::finish_sample(Request& r, Sample& s, const std::string& reason) {
  if (s.finished) return;
  s.finished = true;
  s.result.tokens = s.out;
  std::string rest = s.text ? s.text->flush() : "";
  s.result.text = s.text ? s.text->released() : "";
  s.result.finish_reason = reason;
  GenEvent ev;
  ev.index = s.index;
  ev.text = rest;
  ev.finished = true;
  ev.finish_reason = reason;
  if (reason != "cancelled") r.h->push(std::move(ev));
  if (r.p.n > 1) s.kv.reset();  // its own cache; the shared prompt goes with the request
  --r.unfinished;
}

void Engine::accept_token(Request& r, Sample& s, const float* row) {
  const int32_t id = sample_token(row, vocab_, r.p, s.counts, s.seen, s.rng);
  const auto now = Clock::now();
  if (metrics_) {
    const Labels l = {{"model", name_}};
    if (s.out.empty()) metrics_->observe("rmkit_time_to_first_token_seconds", std::chrono::duration<double>(now - r.submitted).count(), l);
    else metrics_->observe("rmkit_inter_token_seconds", std::chrono::duration<double>(now - s.last_token).count(), l);
    metrics_->inc("rmkit_generated_tokens_total", l);
  }
  s.last_token = now;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.generated_tokens;
  }
  const bool is_stop = (!r.p.ignore_eos && std::find(eos_ids_.begin(), eos_ids_.end(), id) != eos_ids_.end()) ||
                       std::find(r.p.stop_ids.begin(), r.p.stop_ids.end(), id) != r.p.stop_ids.end();
  if (is_stop) {
    finish_sample(r, s, "stop");
    return;
  }
  GenEvent ev;
  ev.index = s.index;
  ev.ids = {id};
  if (r.p.logprobs >= 0) {
    s.result.logprobs.push_back(token_logprob(row, vocab_, id, r.p.logprobs));
    ev.logprobs = {s.result.logprobs.back()};
  }
  s.out.push_back(id);
  ++s.counts[id];
  if (!s.seen.empty()) s.seen[static_cast<size_t>(id)] = 1;
  bool stopped = false;
  ev.text = s.text->push(id, &stopped);
  r.h->push(std::move(ev));
  if (stopped) finish_sample(r, s, "stop");
  else if (static_cast<int64_t>(s.out.size()) >= r.max_new) finish_sample(r, s, "length");
  else s.pending = id;
}

void Engine::step(std::vector<std::shared_ptr<Request>>& running) {
  const auto& mc = model_->config();
  // allocate caches of newly admitted requests; drop cancelled ones
  for (auto& rp : running) {
    Request& r = *rp;
    if (!r.allocated) {
      r.allocated = true;
      r.prompt_kv = std::make_shared<model::SeqKV>();
      r.prompt_kv->reserve(static_cast<int64_t>(r.prompt.size()) + (r.p.n == 1 ? r.max_new : 0), mc);
      r.unfinished = r.p.n;
    }
    if (r.h->cancelled()) {  // the caller is gone: stop computing for it
      for (auto& s : r.samples) finish_sample(r, s, "cancelled");
      if (r.samples.empty()) r.unfinished = 0;
    }
  }
  // the packed row: one token per decoding sample, then prompt chunks
  std::vector<int64_t> ids, pos;
  model::PackedLayout layout;
  std::vector<model::SeqKV*> kvs;
  struct Need {
    Request* r;
    Sample* s;         // decode row of a sample; nullptr: the prompt's last row
    int64_t row;
  };
  std::vector<Need> needs;
  std::vector<std::pair<Request*, std::pair<int64_t, int64_t>>> prompt_rows;  // (request, [row, first prompt index))
  std::vector<std::pair<Request*, int64_t>> prefill_advance;                  // prompt tokens run this step
  auto add_segment = [&](model::SeqKV* kv, const int32_t* tok, int64_t n, int64_t first_pos) {
    layout.segments.push_back({static_cast<int64_t>(ids.size()), n, 0, 0});
    kvs.push_back(kv);
    for (int64_t i = 0; i < n; ++i) {
      ids.push_back(tok[i]);
      pos.push_back(first_pos + i);
    }
  };
  for (auto& rp : running) {
    if (!rp->prefill_done() || rp->unfinished == 0) continue;
    for (auto& s : rp->samples) {
      if (s.finished || s.pending < 0) continue;
      needs.push_back({rp.get(), &s, static_cast<int64_t>(ids.size())});
      add_segment(s.kv.get(), &s.pending, 1, s.kv->prefix_length() + s.kv->length);
      s.pending = -1;
    }
  }
  int64_t budget = std::max<int64_t>(1, cfg_.prefill_chunk), prefill_tokens = 0;
  for (auto& rp : running) {
    Request& r = *rp;
    if (r.prefill_done() || r.unfinished == 0 || budget == 0) continue;
    const int64_t t = std::min<int64_t>(static_cast<int64_t>(r.prompt.size()) - r.prefilled, budget);
    const int64_t row0 = static_cast<int64_t>(ids.size());
    if (r.p.prompt_logprobs) prompt_rows.push_back({&r, {row0, r.prefilled}});
    add_segment(r.prompt_kv.get(), r.prompt.data() + r.prefilled, t, r.prefilled);
    prefill_advance.push_back({&r, t});
    budget -= t;
    prefill_tokens += t;
    if (r.prefilled + t == static_cast<int64_t>(r.prompt.size())) needs.push_back({&r, nullptr, row0 + t - 1});
  }
  if (!ids.empty()) {
    const int64_t N = static_cast<int64_t>(ids.size());
    layout.positions = torch::tensor(pos, torch::kLong);
    auto ids_t = torch::tensor(ids, torch::kLong).view({1, N});
    std::vector<int64_t> rows;
    for (const auto& n : needs) rows.push_back(n.row);
    std::vector<std::pair<int64_t, int64_t>> lp_rows;  // (first row, count) of prompt-logprob chunks
    for (const auto& [r, rr] : prompt_rows) {
      int64_t len = 0;  // the chunk is the segment starting at rr.first
      for (const auto& g : layout.segments)
        if (g.start == rr.first) len = g.length;
      lp_rows.push_back({static_cast<int64_t>(rows.size()), len});
      for (int64_t i = 0; i < len; ++i) rows.push_back(rr.first + i);
    }
    torch::Tensor logits;
    {
      std::lock_guard<std::mutex> clk(*compute_mu_);
      c10::InferenceMode guard;
      train::CpuAutocast autocast(cfg_.bf16);
      model::ForwardInput in;
      in.input_ids = ids_t;
      in.packed = &layout;
      in.seq_kv = &kvs;
      auto hidden = model_->forward_hidden(in);  // [1, N, H]
      for (size_t i = 0; i < kvs.size(); ++i) kvs[i]->length += layout.segments[i].length;
      if (!rows.empty())
        logits = model_->lm_logits(hidden.squeeze(0).index_select(0, torch::tensor(rows, torch::kLong)).unsqueeze(0))
                     .squeeze(0)
                     .to(torch::kFloat32)
                     .contiguous();  // [M, V]
    }
    for (auto& [r, t] : prefill_advance) r->prefilled += t;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stats_.prompt_tokens_computed += prefill_tokens;
      ++stats_.steps;
    }
    const float* L = logits.defined() ? logits.data_ptr<float>() : nullptr;
    for (size_t k = 0; k < prompt_rows.size(); ++k) {  // prompt log-probs: row i predicts prompt[i + 1]
      Request& r = *prompt_rows[k].first;
      const int64_t first = prompt_rows[k].second.second;
      for (int64_t i = 0; i < lp_rows[k].second; ++i) {
        const int64_t at = first + i + 1;
        if (at >= static_cast<int64_t>(r.prompt.size())) break;
        r.h->prompt_logprobs.push_back(token_logprob(L + (lp_rows[k].first + i) * vocab_, vocab_,
                                                     r.prompt[static_cast<size_t>(at)], std::max<int64_t>(0, r.p.logprobs)));
      }
    }
    for (const auto& n : needs) {
      const float* row = L + static_cast<int64_t>(&n - needs.data()) * vocab_;
      Request& r = *n.r;
      if (n.s) {
        accept_token(r, *n.s, row);
        continue;
      }
      // prompt complete: create the samples; each draws its first token from these logits
      r.samples.resize(static_cast<size_t>(r.p.n));
      for (int64_t i = 0; i < r.p.n; ++i) {
        Sample& s = r.samples[static_cast<size_t>(i)];
        s.index = i;
        const uint64_t seed = r.p.seed ? *r.p.seed + static_cast<uint64_t>(i) : std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
        s.rng.seed(seed);
        if (r.p.n == 1) {
          s.kv = r.prompt_kv;
        } else {
          s.kv = std::make_shared<model::SeqKV>();
          s.kv->prefix = r.prompt_kv;
          s.kv->reserve(std::max<int64_t>(1, r.max_new), mc);
        }
        if (r.p.repetition_penalty != 1.0) {
          s.seen.assign(static_cast<size_t>(vocab_), 0);
          for (int32_t id : r.prompt) s.seen[static_cast<size_t>(id)] = 1;
        }
        s.text = std::make_unique<StreamText>(*tok_, r.prompt, r.p.stop);
        if (r.max_new == 0) finish_sample(r, s, "length");
        else accept_token(r, s, row);
      }
    }
  }
  // retire finished requests
  std::vector<std::shared_ptr<Request>> keep;
  for (auto& rp : running) {
    Request& r = *rp;
    if (r.unfinished > 0) {
      keep.push_back(rp);
      continue;
    }
    for (auto& s : r.samples) r.h->results.push_back(std::move(s.result));
    r.samples.clear();
    r.prompt_kv.reset();
    {
      std::lock_guard<std::mutex> lk(mu_);
      stats_.kv_bytes_reserved -= r.reserved;
      if (metrics_) metrics_->set("rmkit_kv_cache_bytes", static_cast<double>(stats_.kv_bytes_reserved), {{"model", name_}});
    }
    r.h->finish();
  }
  running.swap(keep);
}

}  // namespace rmkit::serve
