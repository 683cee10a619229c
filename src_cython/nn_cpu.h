/*
 * nn_cpu.h -- which instruction-set level this CPU (and its OS) can run, and
 * which one the user asked for with NNCORE_CPU_LEVEL.
 *
 * Why: a wheel must run on any x86-64, from a school laptop without AVX to a
 * server with AVX-512.  The hot kernels are compiled three times (see
 * nn_kernels.h); this header decides, once per process, which copy to call.
 *
 *   level 0  "baseline"  what the compiler targets by default (SSE2 on x86-64;
 *                        NEON on arm64; plain C elsewhere)
 *   level 1  "avx2"      AVX2 + FMA
 *   level 2  "avx512"    AVX-512 F, BW, DQ and VL (x86-64-v4's set but CD)
 *
 * A CPU flag is not enough: the OS must also save the wide registers on a
 * context switch, or a thread's ymm/zmm values would be lost.  It says so
 * with OSXSAVE (CPUID.1:ECX bit 27) and the XCR0 register read by xgetbv:
 * bits 1-2 (SSE and AVX state) for AVX, bits 5-7 (opmask, upper halves of
 * zmm0-15, zmm16-31) as well for AVX-512.  GCC's __builtin_cpu_supports does
 * the same checks; writing them out keeps the decision visible (and testable
 * under an emulator) and the same for every compiler.
 */
#ifndef NN_CPU_H
#define NN_CPU_H

#include <stdlib.h>
#include <string.h>

enum { NN_LEVEL_BASELINE = 0, NN_LEVEL_AVX2 = 1, NN_LEVEL_AVX512 = 2 };

/* what the CPU and OS offer, bit by bit (show_config lists them) */
struct nn_cpu_features {
    int sse2, avx, fma, avx2, avx512f, avx512bw, avx512dq, avx512vl;
    int os_avx, os_avx512;          /* the OS saves ymm / zmm state */
};

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#define NN_CPU_X86 1

static inline unsigned long long nn_cpu_xgetbv0(void)
{
    unsigned int lo, hi;
    /* the instruction's bytes: assemblers too old to know "xgetbv" still work */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static inline struct nn_cpu_features nn_cpu_detect(void)
{
    struct nn_cpu_features f;
    unsigned int a, b, c, d, max_leaf;
    memset(&f, 0, sizeof(f));
    max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 1 || !__get_cpuid(1, &a, &b, &c, &d))
        return f;
    f.sse2 = (d >> 26) & 1;
    f.avx = (c >> 28) & 1;
    f.fma = (c >> 12) & 1;
    if ((c >> 27) & 1) {            /* OSXSAVE: xgetbv may be executed */
        unsigned long long xcr0 = nn_cpu_xgetbv0();
        f.os_avx = (xcr0 & 0x6) == 0x6;
        f.os_avx512 = (xcr0 & 0xe6) == 0xe6;
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f.avx2 = (b >> 5) & 1;
        f.avx512f = (b >> 16) & 1;
        f.avx512dq = (b >> 17) & 1;
        f.avx512bw = (b >> 30) & 1;
        f.avx512vl = (b >> 31) & 1;
    }
    return f;
}
#else
#define NN_CPU_X86 0
static inline struct nn_cpu_features nn_cpu_detect(void)
{
    struct nn_cpu_features f;
    memset(&f, 0, sizeof(f));
#if defined(_M_X64) || defined(__SSE2__)
    f.sse2 = 1;
#endif
    return f;
}
#endif

/* The best level this CPU and OS can run (whether or not it was compiled). */
static inline int nn_cpu_best_level(void)
{
    struct nn_cpu_features f = nn_cpu_detect();
    int avx2 = f.avx && f.avx2 && f.fma && f.os_avx;
    if (avx2 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.os_avx512)
        return NN_LEVEL_AVX512;
    return avx2 ? NN_LEVEL_AVX2 : NN_LEVEL_BASELINE;
}

static inline const char *nn_cpu_level_name(int level)
{
    return level == NN_LEVEL_AVX512 ? "avx512" : level == NN_LEVEL_AVX2 ? "avx2" : "baseline";
}

/* NNCORE_CPU_LEVEL: -1 when unset or empty, -2 when not a level's name (the
 * Python side refuses that value with a clear message at import, before any
 * kernel runs), otherwise the level asked for. */
static inline int nn_cpu_requested_level(void)
{
    const char *s = getenv("NNCORE_CPU_LEVEL");
    if (!s || !*s) return -1;
    for (int level = NN_LEVEL_BASELINE; level <= NN_LEVEL_AVX512; level++)
        if (strcmp(s, nn_cpu_level_name(level)) == 0)
            return level;
    return -2;
}

#endif /* NN_CPU_H */
