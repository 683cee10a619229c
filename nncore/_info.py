"""show_config() and the thread count of the kernels."""
import json
import os
import platform
import sys

import numpy as np


def _build_info():
    path = os.path.join(os.path.dirname(__file__), "_ext", "build_info.json")
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return {}


# The count set by set_num_threads, for every thread of the process.  OpenMP
# keeps its setting per thread, so a fit run from a worker thread would not
# see what the main thread asked for; the model API applies this value to
# the calling thread (sync_threads) before it runs kernels.
_requested = None


def max_threads_allowed():
    """The most threads set_num_threads accepts: 8 per processor, at least 64
    (far more only makes the OS fail to create them)."""
    return max(64, 8 * (os.cpu_count() or 1))


def get_num_threads() -> int:
    """Threads the kernels may use (``OMP_NUM_THREADS`` is respected at start-up).

    Example::

        keras.get_num_threads()        # e.g. 2 on a two-core machine
    """
    from nncore._ext import config
    sync_threads()
    return config.get_num_threads()


def set_num_threads(n: int) -> None:
    """Let the kernels use up to ``n`` threads (they still use one for small work).

    Applies to every thread of this process that calls nncore's model API;
    results are bitwise the same for any thread count.

    Example::

        keras.set_num_threads(1)       # e.g. inside each of several parallel jobs
    """
    import numbers
    from nncore._ext import config
    global _requested
    limit = max_threads_allowed()
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= limit:
        raise ValueError(f"set_num_threads: n must be an integer in [1, {limit}] "
                         f"({os.cpu_count()} processors here), got {n!r}")
    _requested = int(n)
    config.set_num_threads(_requested)


def sync_threads():
    """Make the calling thread use the count set by set_num_threads."""
    if _requested is not None:
        from nncore._ext import config
        if config.get_num_threads() != _requested:
            config.set_num_threads(_requested)


def config_dict() -> dict:
    """What :func:`show_config` prints, as a dict."""
    from nncore import __version__, backend
    from nncore._ext import config, gemm
    info = _build_info()
    return {
        "nncore": __version__,
        # learners coming from Colab look for a GPU line: there is none to find
        "device": "CPU only (nncore has no GPU support; it uses the CPU cores below)",
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "backend": backend.get_backend(),
        "openmp": config.openmp_enabled(),
        "max_threads": config.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        # the hot kernels exist per CPU level; this one was chosen at import
        "cpu_level": config.cpu_level(),
        "simd": config.simd_level(),
        "cpu_level_env": os.environ.get("NNCORE_CPU_LEVEL"),
        "cpu_best_level": config.cpu_best_level(),
        "cpu_levels_built": config.cpu_levels_built(),
        "cpu_features": [name for name, ok in config.cpu_features().items() if ok],
        "ftz_daz": config.has_ftz(),
        "compiler": info.get("compiler"),
        "compile_args": info.get("compile_args"),
        "portable_build": info.get("portable"),
        "gemm_tiles": gemm.tile_sizes(),
    }


def show_config() -> dict:
    """Print how this nncore was built and what it will use, and return it as a dict.

    nncore runs on the CPU only (there is no GPU code): the report says so,
    then gives the version, the OpenMP thread count, the compile flags, the
    CPU level the kernels run at (``cpu_level``: baseline, avx2 or avx512,
    chosen at import from what the CPU supports, ``cpu_features``; the
    environment variable ``NNCORE_CPU_LEVEL`` forces a lower one) and the
    NumPy version.

    Example::

        keras.show_config()
        # nncore configuration:
        #   nncore  : 0.1.0
        #   device  : CPU only (nncore has no GPU support; ...)
        #   ...
    """
    c = config_dict()
    width = max(len(k) for k in c)
    lines = ["nncore configuration:"]
    for k, v in c.items():
        if isinstance(v, list):
            v = " ".join(v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        lines.append(f"  {k.ljust(width)} : {v}")
    print("\n".join(lines))
    return c
