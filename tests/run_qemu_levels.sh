#!/usr/bin/env bash
# Does a build made on this machine run on older x86-64 CPUs, and pick the
# right CPU level there?  Runs the installed/in-place nncore under QEMU's
# user-mode emulator with CPU models that lack AVX-512 (Haswell: AVX2+FMA)
# and AVX (Nehalem: x86-64-v2, SSE4.2), imports it, prints the level it chose
# and trains a small dense model and a small CNN for one epoch.
#
# Not part of the test suite: emulation is slow (a minute or more per CPU).
#   apt-get install -y qemu-user       # QEMU >= 7.2 (AVX2 in its TCG)
#   bash tests/run_qemu_levels.sh [python]
# Any illegal instruction (SIGILL, exit 132) or a wrong level fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
PYBIN=$("$PY" -c 'import sys; print(sys.executable)')
command -v qemu-x86_64 >/dev/null || { echo "qemu-x86_64 not found (apt-get install -y qemu-user)"; exit 2; }

CHECK='
import sys, time, numpy as np
import nncore as keras
from nncore._ext import config
want = sys.argv[1]
print("  cpu_best_level:", config.cpu_best_level(), " cpu_level:", config.cpu_level(),
      " simd:", config.simd_level())
print("  features:", [k for k, v in config.cpu_features().items() if v])
assert config.cpu_level() == want, (config.cpu_level(), want)
t = time.time()
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).random((512, 28, 28, 1), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 10, 512)
dense = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(100, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
dense.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
h = dense.fit(x, y, epochs=1, batch_size=32, verbose=0)
cnn = keras.Sequential([keras.Input((28, 28, 1)),
                        keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
                        keras.layers.MaxPooling2D(2),
                        keras.layers.Conv2D(64, 3, activation="relu", padding="same"),
                        keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                        keras.layers.Dense(10, activation="softmax")])
cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
h2 = cnn.fit(x[:128], y[:128], epochs=1, batch_size=32, verbose=0)
print("  dense loss %.4f, cnn loss %.4f, %.1f s emulated" %
      (h.history["loss"][0], h2.history["loss"][0], time.time() - t))
'

run() {   # run CPU_MODEL EXPECTED_LEVEL [NNCORE_CPU_LEVEL]
    echo "== qemu-x86_64 -cpu $1${3:+ with NNCORE_CPU_LEVEL=$3}: expect $2"
    # (QEMU lists the model's features its TCG cannot emulate: noise here)
    NNCORE_CPU_LEVEL=${3:-} qemu-x86_64 -cpu "$1" "$PYBIN" -c "$CHECK" "$2" 2>&1 \
        | grep -v "TCG doesn't support requested feature"
}
run Nehalem baseline
run Haswell avx2
run Haswell baseline baseline
# QEMU's TCG cannot run AVX-512: a Skylake-Server model has its AVX-512 bits
# filtered out, so the build must fall back to avx2 there.
run Skylake-Server avx2
echo "qemu CPU levels: all OK"
