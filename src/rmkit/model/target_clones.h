// RMKIT_CLONES: compile a hot loop for AVX-512, AVX2 and baseline x86-64; GCC picks one at load
// time (ifunc), so the binary stays portable while `#pragma omp simd` vectorises the loops and
// their float reductions at the machine's width. Files using it are built with -fopenmp (libgomp
// is the runtime libtorch already uses).
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define RMKIT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RMKIT_CLONES
#endif
