"""Compiled kernels (built from ``src_cython/``); see ``nncore.backend``.

The hot kernels (GEMM, convolution transforms, bias+activation, pooling) are
compiled once per CPU level -- ``baseline`` (SSE2 on x86-64), ``avx2``
(AVX2+FMA) and ``avx512`` (AVX-512 F/BW/DQ/VL) -- and every module uses the
best one this CPU supports (``src_cython/nn_dispatch.h``).  The environment
variable ``NNCORE_CPU_LEVEL`` forces a lower level, e.g. to reproduce a
result from an older machine::

    NNCORE_CPU_LEVEL=baseline python train.py

This package's import is the first thing any kernel module does, so the
variable is checked here, once, before a kernel runs: a name that is not a
level stops with ValueError; a level the CPU (or this build) lacks gives a
warning, and the best available level is used.
"""
import os
import warnings

CPU_LEVELS = ("baseline", "avx2", "avx512")
ENV_VAR = "NNCORE_CPU_LEVEL"


def _check_cpu_level_request():
    asked = os.environ.get(ENV_VAR, "")
    if not asked:
        return
    if asked not in CPU_LEVELS:
        raise ValueError(f"{ENV_VAR}={asked!r} is not a CPU level; use one of "
                         f"{', '.join(CPU_LEVELS)} (or unset it for the best this CPU supports)")
    try:
        from nncore._ext import config
    except ImportError:       # not built: the caller's own import says so
        return
    built = config.cpu_levels_built()
    if config.cpu_level() == "native":
        warnings.warn(f"{ENV_VAR}={asked} is ignored: this nncore was built with "
                      "NNCORE_NATIVE=1 (-march=native, one CPU level)",
                      RuntimeWarning, stacklevel=2)
        return
    best = config.cpu_best_level()
    usable = min(CPU_LEVELS.index(best), CPU_LEVELS.index(built[-1]))
    if CPU_LEVELS.index(asked) > usable:
        why = (f"this CPU supports up to {best}" if CPU_LEVELS.index(asked) > CPU_LEVELS.index(best)
               else f"this build has only {', '.join(built)}")
        warnings.warn(f"{ENV_VAR}={asked} cannot be used: {why}; the kernels run at "
                      f"{CPU_LEVELS[usable]}", RuntimeWarning, stacklevel=2)


_check_cpu_level_request()
