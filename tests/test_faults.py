"""Faults during training: Ctrl-C, NaN losses, killed checkpoint writes,
thread-count and loop-path determinism, and memory growth.

The Ctrl-C and kill tests run training in a child process (``python -c``) and
signal it from here.  Times are compared on the same clock (``time.time()`` in
both processes).
"""
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import nncore as keras

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
IS_POSIX = os.name == "posix"


def _env(**extra):
    from conftest import child_env     # the same nncore as this test run
    return child_env(PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1", **extra)


class Child:
    """A ``python -c`` child whose stdout lines are collected by a thread, so
    the test can wait for a marker line without blocking on a pipe."""

    def __init__(self, code, cwd):
        import queue
        import threading
        self.proc = subprocess.Popen([sys.executable, "-u", "-c", textwrap.dedent(code)],
                                     cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines, self.err = [], []
        self._q = queue.Queue()

        def pump(stream, sink, q):
            for line in stream:
                sink.append(line.rstrip("\n"))
                if q is not None:
                    q.put(line.rstrip("\n"))
            if q is not None:
                q.put(None)
        self._threads = [threading.Thread(target=pump, args=(self.proc.stdout, self.lines, self._q),
                                          daemon=True),
                         threading.Thread(target=pump, args=(self.proc.stderr, self.err, None),
                                          daemon=True)]
        for t in self._threads:
            t.start()

    def wait_for(self, marker, timeout):
        import queue
        deadline = time.time() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                line = None
                if time.time() < deadline:
                    continue
            if line is not None and line.startswith(marker):
                return line
            if line is None:
                self.kill()
                pytest.fail(f"child never printed {marker!r} within {timeout} s "
                            f"(exit code {self.proc.returncode}):\n" + "\n".join(self.lines)
                            + "\n" + "\n".join(self.err)[-3000:])

    def signal(self, sig):
        self.proc.send_signal(sig)

    def finish(self, timeout=30):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("child did not exit:\n" + "\n".join(self.lines))
        for t in self._threads:
            t.join(timeout=5)
        return self.proc.returncode, self.lines, "\n".join(self.err)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# =============================================================== (a) Ctrl-C
CTRL_C_CHILD = """
import os, signal, sys, time
# a child started from a non-interactive shell's background job inherits
# SIGINT as *ignored*; this test is about what Ctrl-C does, so restore it
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
import nncore as keras

class Marker(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            print("TRAINING", time.time(), flush=True)
    def on_train_end(self, logs=None):
        print("TRAIN_END", time.time(), flush=True)

rng = np.random.default_rng(0)
x = rng.normal(0, 1, (20000, 64)).astype(np.float32)
y = rng.integers(0, 10, 20000)
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(shape=(64,)),
                          keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dropout(0.1),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.use_fused = {fused}
try:
    model.fit(x, y, epochs=100000, batch_size=32, verbose=0, callbacks=[Marker()])
    print("FIT_RETURNED", flush=True)
except KeyboardInterrupt:
    print("CAUGHT", time.time(), flush=True)
finite = all(bool(np.isfinite(w).all()) for w in model.get_weights())
p = model.predict(x[:100], verbose=0)
model.save("after.npz")
q = keras.models.load_model("after.npz").predict(x[:100], verbose=0)
print("AFTER", finite, bool(np.isfinite(p).all()), bool(np.array_equal(p, q)),
      model.optimizer.iterations, flush=True)
"""


@pytest.mark.skipif(not IS_POSIX, reason="SIGINT to a child process needs POSIX")
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_batch"])
def test_ctrl_c_stops_fit_cleanly(tmp_path, fused):
    child = Child(CTRL_C_CHILD.format(fused=fused), cwd=str(tmp_path))
    try:
        child.wait_for("TRAINING", timeout=30)
        time.sleep(0.5 + random.random())          # somewhere inside epoch 2
        sent = time.time()
        child.signal(signal.SIGINT)
        rc, lines, err = child.finish(timeout=30)
    finally:
        child.kill()
    out = "\n".join(lines)
    assert rc == 0, f"child failed ({rc}):\n{out}\n{err[-3000:]}"
    assert not any(l.startswith("FIT_RETURNED") for l in lines), "fit ignored Ctrl-C"
    caught = [l for l in lines if l.startswith("CAUGHT")]
    assert caught, f"fit did not raise KeyboardInterrupt:\n{out}\n{err[-2000:]}"
    train_end = [l for l in lines if l.startswith("TRAIN_END")]
    assert train_end, "on_train_end did not run after Ctrl-C"
    assert lines.index(train_end[0]) < lines.index(caught[0])
    delay = float(caught[0].split()[1]) - sent
    print(f"Ctrl-C ({'fused' if fused else 'per-batch'}): KeyboardInterrupt caught "
          f"{delay * 1000:.0f} ms after SIGINT")
    assert delay < 1.5, f"KeyboardInterrupt reached the caller {delay:.2f} s after SIGINT"
    after = [l for l in lines if l.startswith("AFTER")]
    assert after, f"predict/save after Ctrl-C failed:\n{out}\n{err[-3000:]}"
    _, finite_w, finite_p, same, iterations = after[0].split()
    assert finite_w == "True", "weights are not finite after Ctrl-C"
    assert finite_p == "True", "predictions are not finite after Ctrl-C"
    assert same == "True", "the model saved after Ctrl-C does not predict the same"
    assert int(iterations) > 625, "the interrupt came before epoch 2?"


CONSISTENCY_CHILD = """
import os, signal, sys, threading
signal.signal(signal.SIGINT, signal.default_int_handler)   # see CTRL_C_CHILD
import numpy as np
import nncore as keras

rng = np.random.default_rng(0)
x = rng.normal(0, 1, (2000, 32)).astype(np.float32)
y = rng.integers(0, 10, 2000)

def make():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input(shape=(32,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dropout(0.1), keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m

model = make()
model.use_fused = {fused}
if {fused}:
    # the fused loop spends nearly all its time inside the compiled call
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
else:
    # deterministic: Ctrl-C arrives after the optimizer updated the first
    # variable of step 150 and before it updated the others
    opt = model.optimizer
    orig = opt.update_step
    calls = [0]
    def update_step(K, w, g, slots):
        orig(K, w, g, slots)
        calls[0] += 1
        if calls[0] == 149 * 4 + 1:
            os.kill(os.getpid(), signal.SIGINT)
    opt.update_step = update_step
try:
    model.fit(x, y, epochs=100000, batch_size=32, verbose=0)
except KeyboardInterrupt:
    pass
k = model.optimizer.iterations
target = model.get_weights()
drop_step = model.layers[1].step

class Find(keras.callbacks.Callback):
    seen, hit = 0, None
    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= max(1, k - 2) and all(np.array_equal(a, b) for a, b in
                                               zip(target, self.model.get_weights())):
            self.hit = self.seen
            self.model.stop_training = True
        if self.seen > k + 3000:
            self.model.stop_training = True

replay = make()
replay.use_fused = False
finder = Find()
replay.fit(x, y, epochs=100000, batch_size=32, verbose=0, callbacks=[finder])
print("STATE", k, drop_step, finder.hit, flush=True)
"""


@pytest.mark.skipif(not IS_POSIX, reason="SIGINT to a child process needs POSIX")
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_batch"])
def test_ctrl_c_leaves_a_consistent_whole_step(tmp_path, fused):
    """After Ctrl-C the weights must be those of exactly
    ``optimizer.iterations`` whole steps (a replay of that many steps gives
    them bitwise), and the Dropout stream must be at the same step -- else a
    resumed fit or a saved checkpoint continues from a state no run produces
    (Adam's bias correction and the dropout masks repeat steps)."""
    child = Child(CONSISTENCY_CHILD.format(fused=fused), cwd=str(tmp_path))
    try:
        rc, lines, err = child.finish(timeout=60)
    finally:
        child.kill()
    state = [l for l in lines if l.startswith("STATE")]
    assert rc == 0 and state, f"child failed ({rc}):\n" + "\n".join(lines) + err[-3000:]
    _, k, drop_step, hit = state[0].split()
    assert hit != "None", (
        f"after Ctrl-C the weights match no replay of {k}..{int(k) + 3000} whole steps: "
        "the interrupt split an optimizer step (some variables updated, others not)")
    assert int(hit) == int(k), (
        f"after Ctrl-C the weights are those of {hit} steps but optimizer.iterations "
        f"says {k}: the last chunk of the compiled loop was not counted")
    assert int(drop_step) == int(k), f"Dropout.step {drop_step} != iterations {k}"


# =============================================================== (b) NaN loss
def _diverging_model(fused):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (256, 20)).astype(np.float32)
    y = rng.integers(0, 4, 256)
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input(shape=(20,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(4, activation="softmax")])
    m.compile(optimizer=keras.optimizers.SGD(1e6), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    m.use_fused = fused
    return m, x, y


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_batch"])
def test_terminate_on_nan_stops_training(fused, capsys):
    m, x, y = _diverging_model(fused)
    h = m.fit(x, y, epochs=6, batch_size=32, verbose=0,
              callbacks=[keras.callbacks.TerminateOnNaN()])
    assert len(h.history["loss"]) < 6
    assert not np.isfinite(h.history["loss"][-1])
    assert "Invalid loss" in capsys.readouterr().out
    # the model is still usable: predict runs (values may be NaN), recompile + fit works
    assert m.predict(x, verbose=0).shape == (256, 4)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_batch"])
def test_nan_loss_without_terminate_runs_every_epoch(fused):
    m, x, y = _diverging_model(fused)
    with pytest.warns(RuntimeWarning, match="NaN or inf in epoch 1") as record:
        h = m.fit(x, y, epochs=4, batch_size=32, verbose=0)
    assert len(record) == 1                            # said once, not every epoch
    assert len(h.history["loss"]) == 4                 # Keras keeps going
    assert np.isnan(h.history["loss"][-1])
    ev = m.evaluate(x, y, verbose=0)
    assert np.isnan(ev[0])
    assert m.predict(x, verbose=0).shape == (256, 4)


def test_nan_propagates_through_relu_on_both_backends():
    """relu(NaN) is NaN in Keras/TF and in nncore's NumPy twin; the compiled
    kernel must agree, or NaN weights before a relu go unnoticed (the outputs
    stay finite, TerminateOnNaN never fires)."""
    from nncore import backend
    x = np.array([[np.nan, -1.0, 2.0, np.inf, -np.inf]], np.float32)
    out = {}
    for name in ("numpy", "cython"):
        backend.set_backend(name)
        z = x.copy()
        backend.kernels().bias_act_forward(z, None, "relu")
        out[name] = z
    backend.set_backend("cython")
    assert np.isnan(out["numpy"][0, 0])
    np.testing.assert_array_equal(out["cython"], out["numpy"])


# =============================================================== (c) atomic checkpoints
CKPT_CHILD = """
import os, sys, time
import numpy as np
import nncore as keras
from nncore.saving import format as F

slow = {slow}
orig = F._write_arrays
def slow_write(fileobj, arrays):
    orig(fileobj, arrays)
    fileobj.flush()
    print("WRITTEN_NOT_RENAMED", time.time(), flush=True)
    if slow:
        time.sleep(3)       # killed here: the new file is complete but not renamed
F._write_arrays = slow_write

class Marker(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print("TRAIN_BEGIN", time.time(), flush=True)
    def on_epoch_end(self, epoch, logs=None):
        print("EPOCH_END", epoch, flush=True)

rng = np.random.default_rng(0)
x = rng.normal(0, 1, (64, 1000)).astype(np.float32)
y = rng.integers(0, 10, 64)
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(shape=(1000,)),
                          keras.layers.Dense(1000, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, epochs=100000, batch_size=64, verbose=0,
          callbacks=[Marker(), keras.callbacks.ModelCheckpoint("ckpt.npz")])
"""


def _check_checkpoint(folder, what):
    path = os.path.join(folder, "ckpt.npz")
    if not os.path.exists(path):
        return False
    try:
        m = keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{what}: ckpt.npz exists but does not load: {type(e).__name__}: {e}")
    p = m.predict(np.zeros((2, 1000), np.float32), verbose=0)
    assert p.shape == (2, 10) and np.isfinite(p).all()
    return True


@pytest.mark.skipif(not IS_POSIX, reason="SIGKILL needs POSIX")
def test_checkpoint_survives_sigkill_mid_write(tmp_path):
    """Deterministic: kill the child after it wrote a new checkpoint into the
    temporary file but before the rename; the previous checkpoint must load."""
    child = Child(CKPT_CHILD.format(slow=True), cwd=str(tmp_path))
    try:
        child.wait_for("WRITTEN_NOT_RENAMED", timeout=30)   # 1st save (completes)
        child.wait_for("WRITTEN_NOT_RENAMED", timeout=30)   # 2nd save: in flight
        child.signal(signal.SIGKILL)
        child.finish()
    finally:
        child.kill()
    assert _check_checkpoint(str(tmp_path), "killed between write and rename")


@pytest.mark.skipif(not IS_POSIX, reason="SIGKILL needs POSIX")
def test_checkpoint_survives_sigkill_at_random_moments(tmp_path):
    """Random: SIGKILL at random moments of a run that saves ~12 MB per epoch;
    whenever ckpt.npz exists it loads.  The same folder is reused, so later
    kills hit the overwrite of an existing checkpoint."""
    rnd = random.Random(1234)
    existed = 0
    for attempt in range(4):
        child = Child(CKPT_CHILD.format(slow=False), cwd=str(tmp_path))
        try:
            child.wait_for("TRAIN_BEGIN", timeout=30)
            time.sleep(rnd.uniform(0.05, 1.2))
            child.signal(signal.SIGKILL)
            child.finish()
        finally:
            child.kill()
        found = _check_checkpoint(str(tmp_path), f"kill #{attempt}")
        print(f"kill #{attempt}: after {len([l for l in child.lines if l.startswith('EPOCH_END')])}"
              f" epochs, checkpoint {'loads' if found else 'absent'}")
        existed += found
    assert existed >= 1, "no checkpoint was ever written: the kills came too early"
    # temporary files of killed writes may stay behind, but never under the real name
    leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert all(f.startswith(".ckpt.npz.") for f in leftovers), leftovers


# =============================================================== (d) determinism
def _train_weights(threads, fused, dropout=0.2):
    keras.set_num_threads(threads)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (600, 40)).astype(np.float32)
    y = rng.integers(0, 6, 600)
    keras.utils.set_random_seed(42)
    m = keras.Sequential([keras.Input(shape=(40,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dropout(dropout),
                          keras.layers.Dense(6, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.use_fused = fused
    h = m.fit(x, y, epochs=2, batch_size=50, verbose=0, validation_split=0.1)
    return m.get_weights(), h.history


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per_batch"])
def test_same_seed_same_weights_for_1_and_2_threads(fused):
    w1, h1 = _train_weights(1, fused)
    w2, h2 = _train_weights(2, fused)
    for a, b in zip(w1, w2):
        assert np.array_equal(a, b)
    assert h1 == h2


def test_same_seed_same_weights_fused_and_per_batch():
    wf, hf = _train_weights(2, True)
    wp, hp = _train_weights(2, False)
    for a, b in zip(wf, wp):
        assert np.array_equal(a, b)
    assert hf == hp


def test_same_seed_twice_same_weights():
    wa, _ = _train_weights(2, True)
    wb, _ = _train_weights(2, True)
    for a, b in zip(wa, wb):
        assert np.array_equal(a, b)


# =============================================================== (e) memory
def rss_mb():
    """Resident set size of this process in MB (psutil if installed)."""
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2 ** 20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
@pytest.mark.skipif(bool(os.environ.get("NNCORE_UNDER_ASAN")),
                    reason="ASan's quarantine holds freed memory: RSS is meaningless")
def test_memory_is_stable_over_repeated_fit_predict_and_builds():
    import gc
    rng = np.random.default_rng(0)
    # sized so that leaking one call's buffers (fused-loop plan ~1.5 MB, a
    # model's weights + gradients ~1 MB) 50 times would exceed the limit
    x = rng.normal(0, 1, (512, 256)).astype(np.float32)
    y = rng.integers(0, 5, 512)

    def build():
        m = keras.Sequential([keras.Input(shape=(256,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(5, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    model = build()
    samples = []
    for i in range(55):
        model.fit(x, y, epochs=1, batch_size=256, verbose=0)
        model.predict(x, verbose=0)
        other = build()
        other.predict(x[:8], verbose=0)
        del other
        if i % 2:
            model.use_fused = not model.use_fused
        if i == 4:
            gc.collect()
            base = rss_mb()
        if i >= 5 and i % 10 == 4:
            gc.collect()
            samples.append(rss_mb())
    gc.collect()
    growth = rss_mb() - base
    print(f"RSS after warm-up {base:.1f} MB, growth over 50 rounds {growth:+.1f} MB")
    assert growth < 30, f"RSS grew by {growth:.1f} MB over 50 fit/predict/build rounds " \
                        f"(samples: {[round(s, 1) for s in samples]})"
