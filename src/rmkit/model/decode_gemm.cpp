#include "rmkit/model/decode_gemm.h"

#include <ATen/autocast_mode.h>

#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#ifdef RMKIT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace rmkit::model {

namespace {
thread_local bool t_active = false;
}  // namespace

DecodeGemmScope::DecodeGemmScope(bool on) : prev_(t_active) { t_active = on; }
DecodeGemmScope::~DecodeGemmScope() { t_active = prev_; }
bool DecodeGemmScope::active() { return t_active; }

#ifdef RMKIT_HAVE_DNNL

namespace {

struct WeightCopy {
  explicit WeightCopy(const torch::Tensor& w)
      : source(w.getIntrusivePtr()), version(w._version()), data(w.data_ptr()), wt(w.detach().t().contiguous()) {}
  c10::weak_intrusive_ptr<c10::TensorImpl> source;  // expired: the weight is gone, the copy too
  int64_t version;
  const void* data;
  torch::Tensor wt;  // [in, out] contiguous
};

// (rows, in, out, bias) -> primitive; shapes of one model are few, rows at most kDecodeGemmMaxRows.
// Primitives are shared by every thread that calls (engine threads come and go, several models'
// engines share shapes), so they use a user scratchpad: with the library's (default) scratchpad a
// primitive must run on the thread that created it; with the caller's own buffer any thread may
// run it (oneDNN's scratchpad_mode documentation).
using PrimKey = std::tuple<int64_t, int64_t, int64_t, bool>;
struct Prim {
  dnnl::matmul mm;
  dnnl::memory::desc src, weights, bias, dst, scratchpad;  // row-major x [M, K], w [K, N], b [1, N], y [M, N]
};

struct Cache {
  std::mutex mu;
  std::unordered_map<const c10::TensorImpl*, WeightCopy> weights;
  std::map<PrimKey, Prim> prims;
  std::set<PrimKey> failed;  // shapes oneDNN refused: torch's linear from then on
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: engines may run during static destruction
  return *c;
}

// The transposed copy of `w`, made or refreshed under c.mu.
torch::Tensor transposed(Cache& c, const torch::Tensor& w) {
  auto* impl = w.unsafeGetTensorImpl();
  auto it = c.weights.find(impl);
  const int64_t version = w._version();
  if (it != c.weights.end() && !it->second.source.expired() && it->second.version == version &&
      it->second.data == w.data_ptr())
    return it->second.wt;
  if (it == c.weights.end())  // a new weight: drop the copies of weights that no longer exist
    for (auto e = c.weights.begin(); e != c.weights.end();)
      e = e->second.source.expired() ? c.weights.erase(e) : std::next(e);
  return c.weights.insert_or_assign(impl, WeightCopy(w)).first->second.wt;
}

// nullptr when oneDNN cannot make one for the shape (then the caller uses torch's linear).
const Prim* primitive(Cache& c, int64_t M, int64_t K, int64_t N, bool bias) {
  const PrimKey key{M, K, N, bias};
  auto it = c.prims.find(key);
  if (it != c.prims.end()) return &it->second;
  if (c.failed.count(key)) return nullptr;
  try {
    using dt = dnnl::memory::data_type;
    Prim p;
    p.src = dnnl::memory::desc({M, K}, dt::f32, dnnl::memory::dims{K, 1});
    p.weights = dnnl::memory::desc({K, N}, dt::f32, dnnl::memory::dims{N, 1});
    p.bias = dnnl::memory::desc({1, N}, dt::f32, dnnl::memory::dims{N, 1});
    p.dst = dnnl::memory::desc({M, N}, dt::f32, dnnl::memory::dims{N, 1});
    auto desc = bias ? dnnl::matmul::desc(p.src, p.weights, p.bias, p.dst) : dnnl::matmul::desc(p.src, p.weights, p.dst);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::matmul::primitive_desc pd(desc, attr, c.eng);
    p.mm = dnnl::matmul(pd);
    p.scratchpad = pd.scratchpad_desc();
    return &c.prims.emplace(key, std::move(p)).first->second;
  } catch (const dnnl::error&) {
    c.failed.insert(key);
    return nullptr;
  }
}

bool eligible(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t rows) {
  if (rows < 2 || rows > kDecodeGemmMaxRows || w.numel() < kDecodeGemmMinWeight) return false;
  if (torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad())) return false;
  if (at::autocast::is_cpu_enabled()) return false;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32) return false;
  if (!w.is_contiguous() || w.is_inference()) return false;  // inference tensors have no version counter
  if (b.defined() && (b.scalar_type() != torch::kFloat32 || !b.is_contiguous())) return false;
  return true;
}

}  // namespace

bool decode_gemm_available() { return true; }

std::optional<torch::Tensor> decode_dense(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                          WeightLayout layout) {
  if (!t_active || weight.dim() != 2) return std::nullopt;  // first: every linear of training passes here
  const bool out_in = layout == WeightLayout::kOutIn;
  const int64_t K = weight.size(out_in ? 1 : 0), N = weight.size(out_in ? 0 : 1);
  if (x.dim() < 1 || x.size(-1) != K) return std::nullopt;
  const int64_t rows = x.numel() / K;
  if (!eligible(x, weight, bias, rows)) return std::nullopt;
  auto xc = x.contiguous();
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  auto y = torch::empty(sizes, x.options());
  Cache& c = cache();
  torch::Tensor w;  // [in, out] contiguous
  Prim prim;
  {
    std::lock_guard<std::mutex> lk(c.mu);  // engines of several models may call at once
    const Prim* p = primitive(c, rows, K, N, bias.defined());
    if (!p) return std::nullopt;
    prim = *p;  // handles: executing needs no lock
    w = out_in ? transposed(c, weight) : weight;
  }
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, dnnl::memory(prim.src, c.eng, xc.data_ptr())},
                                                 {DNNL_ARG_WEIGHTS, dnnl::memory(prim.weights, c.eng, w.data_ptr())},
                                                 {DNNL_ARG_DST, dnnl::memory(prim.dst, c.eng, y.data_ptr())}};
  if (bias.defined()) args.emplace(DNNL_ARG_BIAS, dnnl::memory(prim.bias, c.eng, bias.data_ptr()));
  if (const size_t need = prim.scratchpad.get_size(); need > 0) {
    thread_local std::vector<uint8_t> scratch;  // this thread's executions only
    if (scratch.size() < need) scratch.resize(need);
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(prim.scratchpad, c.eng, scratch.data()));
  }
  thread_local dnnl::stream s(c.eng);
  prim.mm.execute(s, args);
  s.wait();
  return y;
}

int64_t decode_gemm_cache_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  int64_t b = 0;
  for (const auto& [k, e] : c.weights) b += e.wt.numel() * static_cast<int64_t>(e.wt.element_size());
  return b;
}

void decode_gemm_clear_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  c.weights.clear();
}

#else  // no oneDNN at build time

bool decode_gemm_available() { return false; }
std::optional<torch::Tensor> decode_dense(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, WeightLayout) {
  return std::nullopt;
}
int64_t decode_gemm_cache_bytes() { return 0; }
void decode_gemm_clear_cache() {}

#endif

torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (auto y = decode_dense(x, weight, bias, WeightLayout::kOutIn)) return *y;
  return torch::nn::functional::linear(x, weight, bias);
}

}  // namespace rmkit::model
