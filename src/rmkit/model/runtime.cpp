#include "rmkit/model/runtime.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "rmkit/core/cpu_env.h"

namespace rmkit::model {
namespace {

std::vector<std::string> loaded_libraries() {
  std::vector<std::string> libs;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        auto* v = static_cast<std::vector<std::string>*>(data);
        if (info->dlpi_name && *info->dlpi_name) v->push_back(info->dlpi_name);
        return 0;
      },
      &libs);
  return libs;
}

bool tcmalloc_loaded() {
  for (const auto& l : loaded_libraries())
    if (l.find("tcmalloc") != std::string::npos) return true;
  return false;
}

std::string resolve(const std::string& p) {
  char buf[4096];
  if (realpath(p.c_str(), buf)) return buf;
  return p;
}

}  // namespace

void configure_runtime(int threads) {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!tcmalloc_loaded()) {
      mallopt(M_MMAP_THRESHOLD, 32 << 20);
      mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
    try {
      at::set_num_interop_threads(1);
    } catch (...) {  // already started by someone else: harmless
    }
  });
  if (threads <= 0) {
    if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && std::atoi(omp) > 0) threads = std::atoi(omp);
    else threads = detect_cpu().physical_cores;
  }
  if (threads < 1) threads = 1;
  at::set_num_threads(threads);
}

nlohmann::json system_info() {
  nlohmann::json j;
  CpuFeatures f = detect_cpu();
  j["libtorch_version"] = TORCH_VERSION;
  j["cpu"] = {{"model", f.model_name},      {"logical_cpus", f.logical_cpus},
              {"physical_cores", f.physical_cores}, {"avx2", f.avx2},
              {"avx512f", f.avx512f},       {"avx512_bf16", f.avx512_bf16},
              {"avx512_vnni", f.avx512_vnni}, {"amx_bf16", f.amx_bf16}};
  j["threads"] = at::get_num_threads();
  j["interop_threads"] = at::get_num_interop_threads();
  const char* cap = std::getenv("ATEN_CPU_CAPABILITY");
  j["aten_cpu_capability_env"] = cap ? cap : "";
  const char* ct = std::getenv("OPENBLAS_CORETYPE");
  j["openblas_coretype_env"] = ct ? ct : "";
  std::string blas;
  for (const auto& l : loaded_libraries())
    if (l.find("libblas") != std::string::npos || l.find("openblas") != std::string::npos ||
        l.find("libmkl") != std::string::npos || l.find("blis") != std::string::npos)
      blas = resolve(l);
  j["blas_library"] = blas;
  std::string kind = blas.find("openblas") != std::string::npos ? "openblas"
                     : blas.find("blis") != std::string::npos   ? "blis"
                     : blas.find("mkl") != std::string::npos    ? "mkl"
                     : blas.empty()                             ? "unknown"
                                                                : "reference";
  j["blas"] = kind;
  j["allocator"] = tcmalloc_loaded() ? "tcmalloc" : "glibc (mallopt thresholds raised)";
  j["mkldnn"] = at::hasMKLDNN();
  j["cuda_available"] = torch::cuda::is_available();
  nlohmann::json warnings = nlohmann::json::array();
  if (kind == "reference")
    warnings.push_back("libblas.so.3 is the netlib reference BLAS (~20x slower fp32 matmul): "
                       "apt-get install libopenblas0-openmp");
  if (at::get_num_threads() == 1 && f.physical_cores > 1)
    warnings.push_back("intra-op threads = 1 although " + std::to_string(f.physical_cores) +
                       " cores exist: pass --threads");
  if (f.avx512f && !cap) warnings.push_back("ATEN_CPU_CAPABILITY unset: ATen dispatches AVX2 kernels");
  if (f.avx512f && ct && kind == "openblas" && std::string(ct).find("Haswell") != std::string::npos)
    warnings.push_back(std::string("OPENBLAS_CORETYPE=") + ct +
                       " (inherited from the environment) keeps OpenBLAS on AVX2 kernels on this AVX-512 CPU "
                       "(~0.55x the SkylakeX fp32 matmul rate on Zen 5): unset it to let rmkit pick SkylakeX");
  j["warnings"] = warnings;
  return j;
}

}  // namespace rmkit::model
