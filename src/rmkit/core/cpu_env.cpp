#include "rmkit/core/cpu_env.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

namespace rmkit {

const char* const kGompSpinCount = "1000";

static std::string read_first_line(const std::string& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

int other_runnable_tasks() {
  // /proc/loadavg: "0.52 0.58 0.59 3/467 12345": the 4th field counts runnable tasks, this one
  // included. The least of three samples 1 ms apart ignores a task that is just passing through.
  int least = -1;
  for (int i = 0; i < 3; ++i) {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c, run;
    if (!(in >> a >> b >> c >> run)) return -1;
    const int n = std::atoi(run.c_str()) - 1;
    least = least < 0 ? n : std::min(least, n);
    if (i < 2) usleep(1000);
  }
  return std::max(0, least);
}

CpuFeatures detect_cpu() {
  CpuFeatures f;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (f.model_name.empty() && line.rfind("model name", 0) == 0) {
      auto c = line.find(':');
      if (c != std::string::npos) f.model_name = line.substr(c + 2);
    }
    if (line.rfind("flags", 0) == 0) {
      std::istringstream ss(line.substr(line.find(':') + 1));
      std::string flag;
      while (ss >> flag) {
        if (flag == "avx2") f.avx2 = true;
        else if (flag == "avx512f") f.avx512f = true;
        else if (flag == "avx512_bf16") f.avx512_bf16 = true;
        else if (flag == "amx_bf16") f.amx_bf16 = true;
        else if (flag == "avx512_vnni") f.avx512_vnni = true;
      }
      break;
    }
  }
  f.logical_cpus = static_cast<int>(std::thread::hardware_concurrency());
  std::set<std::pair<std::string, std::string>> cores;
  for (int i = 0; i < f.logical_cpus; ++i) {
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(i) + "/topology/";
    std::string pkg = read_first_line(base + "physical_package_id"), core = read_first_line(base + "core_id");
    if (core.empty()) { cores.clear(); break; }
    cores.insert({pkg, core});
  }
  f.physical_cores = cores.empty() ? f.logical_cpus : static_cast<int>(cores.size());
  return f;
}

void apply_cpu_env(int argc, char** argv) {
  (void)argc;
  if (const char* no = std::getenv("RMKIT_NO_CPU_ENV"); no && std::string(no) == "1") return;
  if (std::getenv("RMKIT_CPU_ENV_APPLIED")) return;  // already re-executed once
  CpuFeatures f = detect_cpu();
  bool changed = false;
  // Bounded OpenMP spin (libtorch's intra-op pool and OpenBLAS both use GNU OpenMP, which reads
  // this when it loads). By default an idle GOMP thread spins ~300k iterations (milliseconds)
  // before sleeping; when another process takes one of the cores, the threads spin for a peer that
  // is not running, and a step takes ~4x as long instead of ~2x. A short spin keeps the idle speed
  // (OMP_WAIT_POLICY=PASSIVE, no spin at all, costs ~25 % idle). OMP_WAIT_POLICY or GOMP_SPINCOUNT
  // set by the user win.
  // When other processes already keep at least half of the CPUs runnable, threads do not spin at
  // all (GOMP_SPINCOUNT=0, what OMP_WAIT_POLICY=PASSIVE does).
  if (!std::getenv("GOMP_SPINCOUNT") && !std::getenv("OMP_WAIT_POLICY")) {
    const int others = other_runnable_tasks();
    const bool busy = others >= 0 && 2 * others >= std::max(1, f.logical_cpus);
    setenv("GOMP_SPINCOUNT", busy ? "0" : kGompSpinCount, 1);
    changed = true;
  }
  if (f.avx512f) {
    if (!std::getenv("OPENBLAS_CORETYPE")) { setenv("OPENBLAS_CORETYPE", "SkylakeX", 1); changed = true; }
    if (!std::getenv("ATEN_CPU_CAPABILITY")) { setenv("ATEN_CPU_CAPABILITY", "avx512", 1); changed = true; }
  }
  setenv("RMKIT_CPU_ENV_APPLIED", "1", 1);
  if (changed) {
    ::execv("/proc/self/exe", argv);
    // exec failed: carry on untuned (the env is set for child processes at least)
  }
}

}  // namespace rmkit
