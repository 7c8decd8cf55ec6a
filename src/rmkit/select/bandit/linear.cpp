#include "rmkit/select/bandit/linear.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "rmkit/core/error.h"
#include "rmkit/select/bandit/packed_array.h"

namespace rmkit::select {
namespace {

// A^{-1} -= (u u^T) / (1 + c.u), computed as (u_i u_j) / den for every (i, j) so that A^{-1} stays
// exactly symmetric.
void sherman_morrison(double* a, const double* c, const double* u, size_t d) {
  const double inv_den = 1.0 / (1.0 + dot(c, u, d));
  for (size_t i = 0; i < d; ++i) {
    const double ui = u[i];
    double* row = a + i * d;
    for (size_t j = 0; j < d; ++j) row[j] -= (ui * u[j]) * inv_den;
  }
}

// Runs f(0..n-1) over up to `threads` threads (block i on thread i % threads).
template <class F>
void parallel_blocks(size_t n, size_t threads, F f) {
  threads = std::max<size_t>(1, std::min(threads, n));
  std::vector<std::thread> workers;
  for (size_t w = 1; w < threads; ++w)
    workers.emplace_back([&, w] {
      for (size_t i = w; i < n; i += threads) f(i);
    });
  for (size_t i = 0; i < n; i += threads) f(i);
  for (auto& th : workers) th.join();
}

}  // namespace

size_t RidgeArms::default_dense_rows(size_t dim) {
  size_t t = static_cast<size_t>(0.6180339887 * static_cast<double>(dim));
  while (t * (t + dim) < dim * dim) ++t;
  while (t > 1 && (t - 1) * (t - 1 + dim) >= dim * dim) --t;
  return std::max<size_t>(t, 1);
}

RidgeArms::RidgeArms(size_t arms, size_t dim, double lambda, int low_rank, size_t dense_rows)
    : arms_(arms), dim_(dim), lambda_(lambda), low_rank_(low_rank < 0 ? dim >= kLowRankMinDim : low_rank == 1),
      dense_rows_(dense_rows ? dense_rows : default_dense_rows(dim)), b_(arms * dim, 0.0) {
  if (dim == 0) throw ConfigError("bandit: contextual bandits need a context dimension >= 1");
  if (low_rank_) {
    x_.assign(arms, {});
    m_.assign(arms, {});
    p_.assign(arms, {});
    p_stale_.assign(arms, 0);
    dense_.assign(arms, {});
    return;
  }
  a_inv_.assign(arms * dim * dim, 0.0);
  for (size_t k = 0; k < arms; ++k)
    for (size_t i = 0; i < dim; ++i) a_inv_[k * dim * dim + i * dim + i] = 1.0 / lambda;
}

void RidgeArms::solve(size_t k, const double* c, double* u) const {
  if (const double* a = a_inv(k)) {
    for (size_t i = 0; i < dim_; ++i) u[i] = dot(a + i * dim_, c, dim_);
    return;
  }
  // u = (c - X^T M X c) / lambda
  const auto& x = x_[k];
  const auto& m = m_[k];
  const size_t t = x.size() / dim_;
  std::vector<double> g(t), h(t, 0.0);
  for (size_t i = 0; i < t; ++i) g[i] = dot(x.data() + i * dim_, c, dim_);
  for (size_t i = 0; i < t; ++i) h[i] = dot(m.data() + i * t, g.data(), t);
  for (size_t j = 0; j < dim_; ++j) u[j] = c[j];
  for (size_t i = 0; i < t; ++i) {
    const double hi = h[i];
    const double* xi = x.data() + i * dim_;
    for (size_t j = 0; j < dim_; ++j) u[j] -= hi * xi[j];
  }
  for (size_t j = 0; j < dim_; ++j) u[j] /= lambda_;
}

void RidgeArms::ucb_terms(size_t k, const double* c, double* c_theta, double* c_ainv_c, std::vector<double>* g_out) const {
  if (arm_dense(k)) {
    std::vector<double> u_own;
    std::vector<double>& u = g_out ? *g_out : u_own;
    u.resize(dim_);
    solve(k, c, u.data());
    *c_theta = dot(u.data(), b(k), dim_);
    *c_ainv_c = dot(c, u.data(), dim_);
    return;
  }
  const auto& x = x_[k];
  const auto& m = m_[k];
  const size_t t = x.size() / dim_;
  std::vector<double> g_own;
  std::vector<double>& g = g_out ? *g_out : g_own;
  g.resize(t);
  std::vector<double> mg(t);
  auto& p = p_[k];
  if (p_stale_[k]) {  // one pass: X's row is read once for both products
    p.resize(t);
    for (size_t i = 0; i < t; ++i) {
      g[i] = dot(x.data() + i * dim_, c, dim_);
      p[i] = dot(x.data() + i * dim_, b(k), dim_);
    }
    p_stale_[k] = 0;
  } else {
    for (size_t i = 0; i < t; ++i) g[i] = dot(x.data() + i * dim_, c, dim_);
  }
  for (size_t i = 0; i < t; ++i) mg[i] = dot(m.data() + i * t, g.data(), t);
  *c_theta = (dot(c, b(k), dim_) - dot(p.data(), mg.data(), t)) / lambda_;
  *c_ainv_c = (dot(c, c, dim_) - dot(g.data(), mg.data(), t)) / lambda_;
}

void RidgeArms::ucb_terms_all(const double* c, double* c_theta, double* c_ainv_c) const {
  if (low_rank_) {
    sel_c_.assign(c, c + dim_);
    sel_g_.resize(arms_);
    sel_valid_ = true;
  }
  auto run = [&](size_t k) { ucb_terms(k, c, c_theta + k, c_ainv_c + k, low_rank_ ? &sel_g_[k] : nullptr); };
  size_t values = 0;
  if (low_rank_)
    for (size_t k = 0; k < arms_; ++k) values += arm_dense(k) ? dim_ * dim_ : x_[k].size();
  const size_t hw = std::max<size_t>(1, std::thread::hardware_concurrency());
  const size_t n_threads = std::min({kMaxSelectThreads, hw, arms_});
  if (values < kParallelValues || n_threads < 2) {
    for (size_t k = 0; k < arms_; ++k) run(k);
    return;
  }
  parallel_blocks(arms_, n_threads, run);  // arms k = w, w + n, ... on worker w (this thread is 0)
}

void RidgeArms::add_low_rank(size_t k, const double* c, const std::vector<double>* g_given) {
  // M' = (lambda I + X' X'^T)^{-1} with X' = [X; c]: g = X c, s = lambda + c.c - g^T M g,
  // M' = [[M + (M g)(M g)^T / s, -(M g) / s], [-(M g)^T / s, 1 / s]]
  auto& x = x_[k];
  auto& m = m_[k];
  const size_t t = x.size() / dim_;
  std::vector<double> g(t), mg(t);
  if (g_given && g_given->size() == t) g = *g_given;  // the same dot products, computed by the select
  else
    for (size_t i = 0; i < t; ++i) g[i] = dot(x.data() + i * dim_, c, dim_);
  for (size_t i = 0; i < t; ++i) mg[i] = dot(m.data() + i * t, g.data(), t);
  const double s = lambda_ + dot(c, c, dim_) - dot(g.data(), mg.data(), t);
  std::vector<double> n((t + 1) * (t + 1));
  for (size_t i = 0; i < t; ++i) {
    for (size_t j = 0; j < t; ++j) n[i * (t + 1) + j] = m[i * t + j] + (mg[i] * mg[j]) / s;
    n[i * (t + 1) + t] = -mg[i] / s;
    n[t * (t + 1) + i] = -mg[i] / s;
  }
  n[t * (t + 1) + t] = 1.0 / s;
  m = std::move(n);
  x.insert(x.end(), c, c + dim_);
}

void RidgeArms::add(size_t k, const double* c, const double* u, double r) {
  double* bk = b_.data() + k * dim_;
  for (size_t i = 0; i < dim_; ++i) bk[i] += r * c[i];
  if (!low_rank_) {
    sherman_morrison(a_inv_.data() + k * dim_ * dim_, c, u, dim_);
    return;
  }
  const bool same = sel_valid_ && std::equal(c, c + dim_, sel_c_.begin());
  sel_valid_ = false;  // arm k changes
  if (arm_dense(k)) {  // u: the select's A_k^{-1} c, or solved now (the same dot products)
    std::vector<double> own;
    if (!same || sel_g_[k].size() != dim_) {
      own.resize(dim_);
      solve(k, c, own.data());
    }
    sherman_morrison(dense_[k].data(), c, own.empty() ? sel_g_[k].data() : own.data(), dim_);
    return;
  }
  add_low_rank(k, c, same ? &sel_g_[k] : nullptr);
  p_stale_[k] = 1;
  if (x_[k].size() / dim_ >= dense_rows_) make_dense(k);
}

void RidgeArms::make_dense(size_t k) {
  // A^{-1} = (I - X^T M X) / lambda. Y = M X (t x d), then the upper triangle of X^T Y (symmetric
  // in exact arithmetic) is mirrored, so A^{-1} is exactly symmetric as Sherman–Morrison keeps it.
  // Blocked so that a block of output rows stays in cache while X or Y streams past once per block.
  const size_t t = x_[k].size() / dim_, d = dim_;
  const double* x = x_[k].data();
  const double* m = m_[k].data();
  const size_t hw = std::max<size_t>(1, std::thread::hardware_concurrency());
  constexpr size_t kRows = 16;
  std::vector<double> y(t * d, 0.0);
  parallel_blocks((t + kRows - 1) / kRows, hw, [&](size_t blk) {
    const size_t i0 = blk * kRows, i1 = std::min(t, i0 + kRows);
    for (size_t j = 0; j < t; ++j) {
      const double* xj = x + j * d;
      for (size_t i = i0; i < i1; ++i) {
        const double mij = m[i * t + j];
        double* yi = y.data() + i * d;
#pragma omp simd
        for (size_t q = 0; q < d; ++q) yi[q] += mij * xj[q];
      }
    }
  });
  std::vector<double> a(d * d, 0.0);
  parallel_blocks((d + kRows - 1) / kRows, hw, [&](size_t blk) {
    const size_t r0 = blk * kRows, r1 = std::min(d, r0 + kRows);
    for (size_t i = 0; i < t; ++i) {
      const double* xi = x + i * d;
      const double* yi = y.data() + i * d;
      for (size_t r = r0; r < r1; ++r) {  // row r of X^T Y, columns r..d-1
        const double xr = xi[r];
        double* ar = a.data() + r * d;
#pragma omp simd
        for (size_t q = r; q < d; ++q) ar[q] += xr * yi[q];
      }
    }
  });
  for (size_t r = 0; r < d; ++r) {
    double* ar = a.data() + r * d;
    for (size_t q = r; q < d; ++q) {
      const double v = ((r == q ? 1.0 : 0.0) - ar[q]) / lambda_;
      ar[q] = v;
      a[q * d + r] = v;
    }
  }
  dense_[k] = std::move(a);
  std::vector<double>().swap(x_[k]);
  std::vector<double>().swap(m_[k]);
  std::vector<double>().swap(p_[k]);
  p_stale_[k] = 0;
}

nlohmann::json RidgeArms::save() const {
  nlohmann::json a = nlohmann::json::array(), b = nlohmann::json::array();
  nlohmann::json dense = nlohmann::json::array();
  bool any_dense = false;
  for (size_t k = 0; k < arms_; ++k) {
    if (low_rank_) {
      a.push_back(pack_f64(x_[k]));
      dense.push_back(pack_f64(dense_[k]));
      any_dense = any_dense || !dense_[k].empty();
    } else {
      a.push_back(pack_f64(std::vector<double>(a_inv(k), a_inv(k) + dim_ * dim_)));
    }
    b.push_back(std::vector<double>(this->b(k), this->b(k) + dim_));
  }
  nlohmann::json j = {{low_rank_ ? "x" : "a_inv", std::move(a)}, {"b", std::move(b)}};
  if (any_dense) j["a_inv"] = std::move(dense);
  return j;
}

void RidgeArms::load(const nlohmann::json& j) {
  const char* key = low_rank_ ? "x" : "a_inv";
  if (!j.contains(key))
    throw FormatError(std::string("bandit state: no '") + key + "' (a state saved with another dimension form)");
  const auto& a = j.at(key);
  const auto& b = j.at("b");
  if (!a.is_array() || !b.is_array() || a.size() != arms_ || b.size() != arms_)
    throw FormatError(std::string("bandit state: ") + key + " and b need one entry per arm");
  std::vector<double> na, nb;
  std::vector<std::vector<double>> rows(arms_);
  for (size_t k = 0; k < arms_; ++k) {
    auto ak = unpack_f64(a[k], std::string(key) + "[" + std::to_string(k) + "]");
    auto bk = unpack_f64(b[k], "b[" + std::to_string(k) + "]");
    const bool ok = low_rank_ ? ak.size() % dim_ == 0 : ak.size() == dim_ * dim_;
    if (!ok || bk.size() != dim_)
      throw FormatError("bandit state: arm " + std::to_string(k) + ": expected " +
                        (low_rank_ ? "t x " + std::to_string(dim_) + " context rows" : "a " + std::to_string(dim_) + "x" + std::to_string(dim_) + " a_inv") +
                        " and " + std::to_string(dim_) + " b values");
    if (low_rank_) rows[k] = std::move(ak);
    else na.insert(na.end(), ak.begin(), ak.end());
    nb.insert(nb.end(), bk.begin(), bk.end());
  }
  if (!low_rank_) {
    b_ = std::move(nb);
    a_inv_ = std::move(na);
    return;
  }
  std::vector<std::vector<double>> dense(arms_);
  if (j.contains("a_inv")) {  // arms that turned dense
    const auto& dj = j.at("a_inv");
    if (!dj.is_array() || dj.size() != arms_) throw FormatError("bandit state: a_inv needs one entry per arm");
    for (size_t k = 0; k < arms_; ++k) {
      dense[k] = unpack_f64(dj[k], "a_inv[" + std::to_string(k) + "]");
      if (!dense[k].empty() && (dense[k].size() != dim_ * dim_ || !rows[k].empty()))
        throw FormatError("bandit state: arm " + std::to_string(k) + ": expected either context rows or a " +
                          std::to_string(dim_) + "x" + std::to_string(dim_) + " a_inv");
    }
  }
  b_ = std::move(nb);
  sel_valid_ = false;
  for (size_t k = 0; k < arms_; ++k) {  // rebuild M exactly as the updates built it
    x_[k].clear();
    m_[k].clear();
    p_[k].clear();
    dense_[k] = std::move(dense[k]);
    for (size_t i = 0; i < rows[k].size() / dim_; ++i) add_low_rank(k, rows[k].data() + i * dim_, nullptr);
    p_stale_[k] = dense_[k].empty() ? 1 : 0;
  }
}

LinUcb::LinUcb(const BanditParams& p)
    : Bandit(p), ridge_(p.arms, p.dim, p.lambda), exploit_(p.arms), bonus_(p.arms), u_(p.arms * p.dim) {}

size_t LinUcb::choose(const Context& c) {
  const size_t d = params_.dim;
  scores_.assign(params_.arms, 0.0);
  std::vector<double> quad(params_.arms, 0.0);
  if (ridge_.low_rank()) ridge_.ucb_terms_all(c.data(), exploit_.data(), quad.data());
  for (size_t k = 0; k < params_.arms; ++k) {
    if (!ridge_.low_rank()) {
      double* u = u_.data() + k * d;
      ridge_.solve(k, c.data(), u);
      exploit_[k] = dot(u, ridge_.b(k), d);  // c.theta = c.A^{-1}b = (A^{-1}c).b, A^{-1} symmetric
      quad[k] = dot(c.data(), u, d);
    }
    bonus_[k] = params_.alpha * std::sqrt(std::max(0.0, quad[k]));
    scores_[k] = exploit_[k] + bonus_[k];
  }
  last_context_ = c;
  u_valid_ = true;
  return argmax_lowest(scores_);
}

void LinUcb::learn(size_t arm, const Context& c, double reward) {
  const size_t d = params_.dim;
  double* u = u_.data() + arm * d;
  if (!ridge_.low_rank() && (!u_valid_ || c != last_context_)) ridge_.solve(arm, c.data(), u);
  ridge_.add(arm, c.data(), u, reward);
  u_valid_ = false;
}

void LinUcb::load_model(const nlohmann::json& m) {
  RidgeArms r(params_.arms, params_.dim, params_.lambda);
  r.load(m);
  ridge_ = std::move(r);
  u_valid_ = false;
}

LinearThompson::LinearThompson(const BanditParams& p)
    : Bandit(p), ridge_(p.arms, p.dim, p.lambda), rng_(p.seed), u_(p.dim) {}

size_t LinearThompson::choose(const Context& c) {
  const size_t d = params_.dim;
  scores_.assign(params_.arms, 0.0);
  std::vector<double> mean(params_.arms, 0.0), quad(params_.arms, 0.0);
  if (ridge_.low_rank()) ridge_.ucb_terms_all(c.data(), mean.data(), quad.data());
  for (size_t k = 0; k < params_.arms; ++k) {  // normals drawn in arm order
    if (!ridge_.low_rank()) {
      ridge_.solve(k, c.data(), u_.data());
      mean[k] = dot(u_.data(), ridge_.b(k), d);
      quad[k] = dot(c.data(), u_.data(), d);
    }
    const double sd = params_.v * std::sqrt(std::max(0.0, quad[k]));
    scores_[k] = mean[k] + sd * rng_.normal();
  }
  return argmax_lowest(scores_);
}

void LinearThompson::learn(size_t arm, const Context& c, double reward) {
  if (!ridge_.low_rank()) ridge_.solve(arm, c.data(), u_.data());
  ridge_.add(arm, c.data(), u_.data(), reward);
}

nlohmann::json LinearThompson::save_model() const {
  nlohmann::json j = ridge_.save();
  j["rng_state"] = rng_.state();
  return j;
}

void LinearThompson::load_model(const nlohmann::json& m) {
  RidgeArms r(params_.arms, params_.dim, params_.lambda);
  r.load(m);
  rng_.set_state(m.at("rng_state").get<uint64_t>());
  ridge_ = std::move(r);
}

}  // namespace rmkit::select
