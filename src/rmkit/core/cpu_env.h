// CPU environment tuning that must happen before libraries initialise.
//
// OpenBLAS reads OPENBLAS_CORETYPE when it is loaded (before main), and 0.3.21 picks Haswell kernels
// on Zen 4/5 although the CPU has AVX-512 (+40-60 % fp32 matmul with SkylakeX kernels). libtorch 1.13
// makes AVX-512 dispatch opt-in via ATEN_CPU_CAPABILITY (+12-16 % per training step). So on an
// AVX-512 machine, rmkit binaries set both (only when the user has not set them) and re-execute
// themselves once. They also bound GNU OpenMP's spin-wait (GOMP_SPINCOUNT) on every machine.
// RMKIT_NO_CPU_ENV=1 disables all of this.
#pragma once
#include <string>

namespace rmkit {

struct CpuFeatures {
  bool avx2 = false, avx512f = false, avx512_bf16 = false, amx_bf16 = false, avx512_vnni = false;
  std::string model_name;
  int logical_cpus = 0;
  int physical_cores = 0;  // unique (package, core) pairs from sysfs; falls back to logical
};

CpuFeatures detect_cpu();

// GOMP_SPINCOUNT rmkit sets when neither it nor OMP_WAIT_POLICY is set (a bounded spin: graceful
// speed when another process takes a core; see README "Performance settings").
extern const char* const kGompSpinCount;

// Runnable tasks other than this one right now (least of 3 samples of /proc/loadavg), -1 unknown.
// When they occupy >= half of the CPUs at start, rmkit sets GOMP_SPINCOUNT=0 instead.
int other_runnable_tasks();

// Call first thing in main(). May not return (execv). Safe to call when already tuned.
void apply_cpu_env(int argc, char** argv);

}  // namespace rmkit
