#include "dist_options.h"

#include <algorithm>

#include "rmkit/core/cpu_env.h"
#include "rmkit/dist/launch_env.h"
#include "rmkit/dist/process_group.h"
#include "rmkit/model/runtime.h"

namespace rmkit::cli {

std::vector<OptionSpec> with_dist_options(std::vector<OptionSpec> specs) {
  auto has = [&](const std::string& n) {
    return std::any_of(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.name == n; });
  };
  if (!has("threads"))
    specs.push_back({"threads", OptKind::Int, "0", "CPU threads (0 = physical cores / ranks on this machine)"});
  specs.push_back({"dist-timeout", OptKind::Int, "1800",
                   "data parallel: seconds any collective may wait before the run stops with an error naming the rank"});
  specs.push_back({"dist-backend", OptKind::String, "auto", "data parallel: auto | gloo | nccl (CUDA builds)"});
  return specs;
}

bool init_dist_from_options(const Options& o) {
  const dist::LaunchEnv env = dist::LaunchEnv::from_environment();
  int threads = static_cast<int>(o.integer("threads"));
  if (threads <= 0 && env.distributed()) threads = dist::default_threads_per_rank(env, detect_cpu().physical_cores);
  model::configure_runtime(threads);
  if (!env.distributed()) return true;
  dist::GroupOptions go;
  const long long t = o.integer("dist-timeout");
  if (t <= 0) throw UsageError("--dist-timeout: expected seconds > 0");
  go.timeout = std::chrono::seconds(t);
  go.backend = o.choice("dist-backend", {"auto", "gloo", "nccl"});
  auto g = dist::init_default_group(go);
  return g->rank() == 0;
}

}  // namespace rmkit::cli
