// CBLAS as shipped by Debian's libopenblas-dev, plus the few OpenBLAS
// extensions the engine uses (core name, thread count) and a CPU feature
// probe, so that FWCore can tell whether OpenBLAS chose kernels older than
// the CPU it runs on.
#ifndef FASTWEIGHTS_CBLAS_SHIM_H
#define FASTWEIGHTS_CBLAS_SHIM_H

#include <cblas.h>

char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);

/// 4: AVX-512F, 3: AVX2 + FMA, 2: AVX, 1: SSE3 or older.
static inline int fw_cpu_simd_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 4;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 3;
    if (__builtin_cpu_supports("avx")) return 2;
    return 1;
}

/// 1 when the CPU vendor is AMD, else 0.
static inline int fw_cpu_is_amd(void) {
    __builtin_cpu_init();
    return __builtin_cpu_is("amd") ? 1 : 0;
}

#endif
