"""Runtime CPU dispatch: the hot kernels exist once per CPU level (baseline,
avx2, avx512) and the best one this CPU supports is chosen at import;
NNCORE_CPU_LEVEL forces a lower one (src_cython/nn_dispatch.h,
nncore/_ext/__init__.py).

Every level this machine can run gets the kernel suite's twin-equality and
1-vs-2-thread tests (a subprocess per level below the default; the default
level is what the rest of the suite runs at).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, child_env

import nncore
from nncore._ext import config

LEVELS = ("baseline", "avx2", "avx512")
# vector width of each level's GEMM (a level that is really in use shows it)
VECTOR_BYTES = {"baseline": 16, "avx2": 32, "avx512": 64}


def runnable_levels():
    """Levels both built into this nncore and supported by this CPU."""
    if config.cpu_level() == "native":
        return []
    best = LEVELS.index(config.cpu_best_level())
    return [lv for lv in config.cpu_levels_built() if LEVELS.index(lv) <= best]


def run_child(code, level, timeout=120):
    env = child_env()
    env.pop("NNCORE_CPU_LEVEL", None)
    if level is not None:
        env["NNCORE_CPU_LEVEL"] = level
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=timeout)


REPORT = """
import json, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import nncore
    from nncore._ext import config, gemm
info = nncore._info.config_dict()
print(json.dumps({"level": config.cpu_level(), "shown": info["cpu_level"],
                  "vbytes": gemm.tile_sizes()["vector_bytes"],
                  "warnings": [str(w.message) for w in caught]}))
"""


def report(level):
    r = run_child(REPORT, level)
    assert r.returncode == 0, r.stderr[-3000:]
    import json
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_default_level_is_the_best_supported_and_shown():
    if config.cpu_level() == "native":
        pytest.skip("an NNCORE_NATIVE=1 build has one level, 'native'")
    built = config.cpu_levels_built()
    best = min(LEVELS.index(config.cpu_best_level()), LEVELS.index(built[-1]))
    assert os.environ.get("NNCORE_CPU_LEVEL") or config.cpu_level() == LEVELS[best]
    c = nncore._info.config_dict()
    assert c["cpu_level"] == config.cpu_level()
    assert set(c["cpu_levels_built"]) <= set(LEVELS) and c["cpu_levels_built"][0] == "baseline"


def test_show_config_prints_the_level_and_cpu_features(capsys):
    nncore.show_config()
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("cpu_level "))
    assert line.split(":", 1)[1].strip() == config.cpu_level()
    feats = config.cpu_features()
    if feats["avx2"]:
        assert "avx2" in next(ln for ln in out.splitlines() if "cpu_features" in ln)


@pytest.mark.parametrize("level", LEVELS)
def test_env_var_selects_the_level(level):
    if level not in runnable_levels():
        pytest.skip(f"{level} is not built or not supported by this CPU")
    r = report(level)
    assert r["level"] == level and r["shown"] == level
    # the GEMM in use has that level's vector width: the table really changed
    assert r["vbytes"] == VECTOR_BYTES[level]
    assert r["warnings"] == []


def test_level_above_the_cpu_warns_and_uses_the_best():
    levels = runnable_levels()
    if not levels or levels[-1] == "avx512":
        pytest.skip("this machine runs every level: none is too high")
    r = report("avx512")
    assert r["level"] == levels[-1]
    assert len(r["warnings"]) == 1
    assert "NNCORE_CPU_LEVEL=avx512" in r["warnings"][0] and levels[-1] in r["warnings"][0]


def test_unknown_level_is_refused_before_any_kernel_runs():
    r = run_child("import nncore\nfrom nncore._ext import gemm\n", "avx9000")
    assert r.returncode != 0
    assert "ValueError" in r.stderr and "NNCORE_CPU_LEVEL='avx9000'" in r.stderr
    assert "baseline, avx2, avx512" in r.stderr


FIT = """
import numpy as np, nncore as keras
keras.utils.set_random_seed(3)
x = np.random.default_rng(1).random((256, 12, 12, 1), dtype=np.float32)
y = np.random.default_rng(2).integers(0, 3, 256)
m = keras.Sequential([keras.Input((12, 12, 1)),
                      keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
                      keras.layers.MaxPooling2D(2),
                      keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
                      keras.layers.Flatten(), keras.layers.Dense(10, activation="sigmoid"),
                      keras.layers.Dense(3, activation="softmax")])
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
m.fit(x, y, epochs=2, batch_size=32, verbose=0)
np.save(OUT, np.concatenate([w.ravel() for w in m.get_weights()]))
"""


def test_every_level_trains_alike_and_reproducibly(tmp_path):
    """A small CNN (one-channel conv, Winograd-sized conv, max pooling, sigmoid,
    GEMM) trained at each level: bitwise the same twice at a level, and close
    (not bitwise: FMA rounds once, wider vectors sum in another order) across
    levels."""
    levels = runnable_levels()
    if len(levels) < 2:
        pytest.skip("only one CPU level can run here")
    weights = {}
    for level in levels:
        runs = []
        for i in range(2 if level == levels[0] else 1):
            out = tmp_path / f"{level}{i}.npy"
            r = run_child(FIT.replace("OUT", repr(str(out))), level)
            assert r.returncode == 0, r.stderr[-3000:]
            runs.append(np.load(out))
        if len(runs) == 2:
            assert np.array_equal(runs[0], runs[1]), f"{level}: two runs differ"
        weights[level] = runs[0]
    ref = weights[levels[-1]]
    for level in levels[:-1]:
        np.testing.assert_allclose(weights[level], ref, rtol=2e-3, atol=2e-4,
                                   err_msg=f"{level} vs {levels[-1]}")


# The kernel suite's twin-equality and thread-count tests, by file and name
# (not the finite-difference gradient checks: a minute, and they test the
# formulas, which the twin-equality tests already pin to the twins).
KERNEL_TESTS = [
    "tests/test_kernels.py::test_gemm_matches_twin",
    "tests/test_kernels.py::test_gemm_large_matches_matmul",
    "tests/test_kernels.py::test_bias_act_forward_matches_twin",
    "tests/test_kernels.py::test_act_backward_matches_twin",
    "tests/test_kernels.py::test_gemm_thread_count_bitwise",
    "tests/test_kernels.py::test_elementwise_thread_count_bitwise",
    "tests/test_conv.py::test_conv_kernel_equals_twin_and_definition",
    "tests/test_conv.py::test_conv_backward_without_dx_and_thread_count_bitwise",
    "tests/test_conv.py::test_pool_kernel_twin_reference_and_gradients",
    "tests/test_conv_fast_paths.py",
    "tests/test_winograd.py",
    "tests/test_fused.py::test_fused_same_for_one_and_two_threads",
    "tests/test_fused.py::test_fused_equals_per_batch_variants",
    "tests/test_recurrent_kernels.py::test_kernel_equals_twin_for_every_option",
    "tests/test_recurrent_kernels.py::test_one_thread_or_two_give_the_same_bits",
    "tests/test_recurrent_kernels.py::test_8_unit_kernels_equal_twin",
    "tests/test_recurrent_kernels.py::test_8_unit_kernels_one_thread_or_two_give_the_same_bits",
]


@pytest.mark.parametrize("level", LEVELS)
def test_kernel_suite_at_level(level):
    """The default level is what the whole suite runs at; each lower level
    this machine supports runs the kernel tests again in a subprocess."""
    levels = runnable_levels()
    if level not in levels:
        pytest.skip(f"{level} is not built or not supported by this CPU")
    if level == config.cpu_level():
        pytest.skip(f"{level} is this run's own level: the rest of the suite covers it")
    env = child_env(NNCORE_CPU_LEVEL=level)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        "-W", "error::RuntimeWarning", "-k", "not finite_differences",
                        *KERNEL_TESTS],
                       cwd=str(REPO), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and " failed" not in r.stdout
