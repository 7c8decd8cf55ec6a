#include "rmkit/dist/process_group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdio>
#include <map>
#include <mutex>

namespace rmkit::dist {
namespace {

std::mutex g_mu;
std::shared_ptr<Group> g_default;

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  if (s.size() > 400) s = s.substr(0, 400) + "...";
  return s;
}

std::string reason_of(const std::exception_ptr& e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
  }
  return "unknown error";
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

constexpr auto kHeartbeat = std::chrono::milliseconds(1000);

}  // namespace

std::shared_ptr<Group> Group::create(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                     const GroupOptions& opts) {
  std::shared_ptr<Group> g(new Group());
  g->store_ = store;
  g->rank_ = rank;
  g->size_ = size;
  g->opts_ = opts;
  std::string backend = opts.backend == "auto" ? "gloo" : opts.backend;
  try {
    if (backend == "gloo") {
      auto o = c10d::ProcessGroupGloo::Options::create(opts.timeout);
      if (!opts.ifname.empty()) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(opts.ifname));
      } else {
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      o->threads = 2;
      g->pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, o);
    } else if (backend == "nccl") {
#ifdef USE_C10D_NCCL
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = opts.timeout;
      g->pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, o);
#else
      throw ConfigError("--dist-backend nccl: this build has no NCCL (build against a CUDA libtorch)");
#endif
    } else {
      throw ConfigError("--dist-backend: expected auto, gloo or nccl, got '" + opts.backend + "'");
    }
  } catch (const rmkit::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DistError("rank " + std::to_string(rank) + "/" + std::to_string(size) + ": creating the " + backend +
                    " process group failed: " + one_line(e.what()));
  }
  g->backend_ = backend;
  if (opts.heartbeat && size > 1) g->start_heartbeat();
  return g;
}

std::shared_ptr<Group> Group::from_env(const LaunchEnv& env, GroupOptions opts) {
  if (opts.ifname.empty()) opts.ifname = env.socket_ifname;
  if (opts.ifname.empty() && is_loopback(env.master_addr)) opts.ifname = "lo";  // single machine: loopback only
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = !env.use_agent_store && env.rank == 0;
    so.numWorkers = env.use_agent_store ? c10::nullopt : c10::optional<std::size_t>(env.world_size);
    so.waitWorkers = false;
    so.timeout = opts.timeout;
    so.multiTenant = true;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    throw DistError(env.describe() + ": connecting to the store at " + env.master_addr + ":" +
                    std::to_string(env.master_port) + " failed: " + one_line(e.what()));
  }
  store = c10::make_intrusive<c10d::PrefixStore>(env.store_prefix(), store);
  return create(store, env.rank, env.world_size, opts);
}

Group::~Group() {
  hb_stop_ = true;
  if (hb_thread_.joinable()) hb_thread_.join();
}

void Group::start_heartbeat() {
  hb_thread_ = std::thread([this] {
    int64_t beat = 0;
    const std::string key = "rmkit_hb/" + std::to_string(rank_);
    while (!hb_stop_) {
      try {
        std::string v = std::to_string(++beat);
        store_->set(key, std::vector<uint8_t>(v.begin(), v.end()));
      } catch (...) {
        return;  // store gone (its host stopped): failures say so themselves
      }
      for (int i = 0; i < 10 && !hb_stop_; ++i) std::this_thread::sleep_for(kHeartbeat / 10);
    }
  });
}

std::string Group::silent_ranks() {
  if (!opts_.heartbeat || size_ <= 1) return "";
  auto read = [&](std::map<int, std::string>* out) {
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      const std::string key = "rmkit_hb/" + std::to_string(r);
      if (!store_->check({key})) {
        (*out)[r] = "";
        continue;
      }
      auto v = store_->get(key);
      (*out)[r] = std::string(v.begin(), v.end());
    }
  };
  std::map<int, std::string> a, b;
  try {
    read(&a);
    std::this_thread::sleep_for(kHeartbeat * 3);
    read(&b);
  } catch (const std::exception&) {
    return "the store (rank 0 or torchrun's agent) is unreachable";
  }
  std::string silent;
  for (const auto& [r, v] : b)
    if (v == a[r]) silent += (silent.empty() ? "" : ", ") + std::to_string(r);
  if (silent.empty()) return "";
  return (silent.find(',') == std::string::npos ? "rank " : "ranks ") + silent + " stopped responding";
}

void Group::fail(const std::string& what, const std::string& reason) {
  std::string who = silent_ranks();
  throw DistError("rank " + std::to_string(rank_) + "/" + std::to_string(size_) + ": " + what + " failed" +
                  (who.empty() ? "" : " (" + who + ")") + ": " + one_line(reason));
}

c10::intrusive_ptr<c10d::Work> Group::allreduce_async(std::vector<at::Tensor>& tensors) {
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  o.timeout = opts_.timeout;
  return pg_->allreduce(tensors, o);
}

void Group::wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
  std::string reason;
  try {
    // Gloo enforces the group's timeout inside the operation; the wait bound is a second guard
    // (a backend that does not time out on its own must not hang us).
    if (work->wait(opts_.timeout + std::chrono::seconds(30))) return;
    reason = "timed out after " + std::to_string(opts_.timeout.count() / 1000) + " s";
  } catch (const std::exception& e) {
    reason = e.what();
  }
  if (reason.empty() && !work->isSuccess()) reason = reason_of(work->exception());
  fail(what, reason);
}

void Group::allreduce_sum(at::Tensor& t, const std::string& what) {
  std::vector<at::Tensor> v{t};
  c10::intrusive_ptr<c10d::Work> w;
  try {
    w = allreduce_async(v);
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
  wait(w, what);
}

void Group::broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what) {
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = opts_.timeout;
  c10::intrusive_ptr<c10d::Work> w;
  try {
    w = pg_->broadcast(tensors, o);
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
  wait(w, what);
}

std::vector<at::Tensor> Group::allgather(const at::Tensor& t, const std::string& what) {
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < size_; ++r) out[0].push_back(at::empty_like(t));
  std::vector<at::Tensor> in{t.contiguous()};
  c10d::AllgatherOptions o;
  o.timeout = opts_.timeout;
  c10::intrusive_ptr<c10d::Work> w;
  try {
    w = pg_->allgather(out, in, o);
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
  wait(w, what);
  return out[0];
}

void Group::barrier(const std::string& what) {
  c10d::BarrierOptions o;
  o.timeout = opts_.timeout;
  c10::intrusive_ptr<c10d::Work> w;
  try {
    w = pg_->barrier(o);
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
  wait(w, what);
}

void set_default_group(std::shared_ptr<Group> g) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_default = std::move(g);
}

std::shared_ptr<Group> default_group() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_default;
}

std::shared_ptr<Group> init_default_group(const GroupOptions& opts) {
  if (auto g = default_group()) return g;
  LaunchEnv env = LaunchEnv::from_environment();
  if (!env.distributed()) return nullptr;
  auto g = Group::from_env(env, opts);
  set_default_group(g);
  return g;
}

bool is_primary() {
  auto g = default_group();
  return !g || g->rank() == 0;
}
int world_size() {
  auto g = default_group();
  return g ? g->size() : 1;
}
int world_rank() {
  auto g = default_group();
  return g ? g->rank() : 0;
}

}  // namespace rmkit::dist
