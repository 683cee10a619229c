"""The fused loop's thread team trains bitwise like the per-batch path.

``training.pyx`` runs each chunk of steps on a team of threads: batch rows
are shared out for the forward pass and the loss, kernel rows for the
gradients and updates, and the lowest wide Dense layer (the "head") is split
by columns, each thread training its own columns on private copies.  None
of that may change a single bit: every case here trains once on the
per-batch Python path and then on the fused loop with 1, 2 and 3 threads,
and compares weights, optimizer slots and the history exactly.  The models
are wide enough (784 inputs) for the loop to use the team, which each case
checks, so a silent fallback to one thread cannot pass for coverage.
"""
import subprocess
import sys

import numpy as np
import pytest

import nncore as keras
from nncore.models import loop

L = keras.layers
N_FEATURES = 784


def _data(n=520, d=N_FEATURES, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (classes, d))
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(0, 2.0, (n, d))
    return (x / 8).astype(np.float32), y.astype(np.uint8)


def _fit(build, optimizer, use_fused, threads=1, loss="sparse_categorical_crossentropy",
         y_transform=None, batch_size=32, epochs=2, sample_weight=False):
    x, y = _data()
    t = y_transform(y) if y_transform else y
    sw = np.linspace(0.5, 2.0, len(y)) if sample_weight else None
    keras.set_num_threads(threads)
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input(shape=(x.shape[1],))] + build())
    model.compile(optimizer=optimizer(), loss=loss, metrics=["accuracy"])
    model.use_fused = use_fused
    history = model.fit(x, t, epochs=epochs, batch_size=batch_size, verbose=0,
                        sample_weight=sw)
    layouts = [model._last_route.layout()]
    return model, history.history, layouts


def _assert_bitwise(ref, got):
    (m0, h0, _), (m1, h1, _) = ref, got
    for a, b in zip(m0.get_weights(), m1.get_weights()):
        assert np.array_equal(a, b)
    for a, b in zip(m0.optimizer.variables, m1.optimizer.variables):
        assert np.array_equal(a, b)
    assert h0 == h1


def head_relu():
    return [L.Dense(100, activation="relu"), L.Dense(10, activation="softmax")]


def head_with_dropout():
    return [L.Dense(96, activation="relu"), L.Dropout(0.3), L.Dense(10, activation="softmax")]


def head_with_activation_layer():
    return [L.Dense(80), L.Activation("tanh"), L.Dense(10, activation="softmax")]


def head_sigmoid_no_bias():
    return [L.Dense(70, activation="sigmoid", use_bias=False), L.Dense(10, activation="softmax")]


def two_hidden():
    return [L.Dense(100, activation="relu"), L.Dense(64, activation="relu"),
            L.Dense(10, activation="softmax")]


def regularized_head():
    return [L.Dense(100, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3)),
            L.Dense(10, activation="softmax")]


def frozen_first_layer():
    return [L.Dense(100, activation="relu", trainable=False), L.Dense(100, activation="relu"),
            L.Dense(10, activation="softmax")]


def logits_out():
    return [L.Dense(100, activation="relu"), L.Dense(10)]


def binary_out():
    return [L.Dense(100, activation="relu"), L.Dense(1, activation="sigmoid")]


CASES = {
    # name: (layers, optimizer, fit options, head expected with a team)
    "relu_rmsprop": (head_relu, keras.optimizers.RMSprop, {}, True),
    "dropout_adam_amsgrad": (head_with_dropout, lambda: keras.optimizers.Adam(amsgrad=True), {}, True),
    "activation_layer_sgd_nesterov": (head_with_activation_layer,
                                      lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                                      {}, True),
    "sigmoid_no_bias_rmsprop_centered": (head_sigmoid_no_bias,
                                         lambda: keras.optimizers.RMSprop(momentum=0.5, centered=True),
                                         {}, True),
    "two_hidden_adagrad": (two_hidden, keras.optimizers.Adagrad, {}, True),
    "regularized_head_adam": (regularized_head, keras.optimizers.Adam, {}, False),
    "frozen_first_layer_adam": (frozen_first_layer, keras.optimizers.Adam, {}, False),
    "batch_7_adam": (head_relu, keras.optimizers.Adam, {"batch_size": 7}, True),
    "from_logits_categorical": (
        logits_out, keras.optimizers.Adam,
        {"loss": keras.losses.CategoricalCrossentropy(from_logits=True),
         "y_transform": lambda y: keras.utils.to_categorical(y, 10)}, True),
    "binary_sample_weight": (
        binary_out, keras.optimizers.RMSprop,
        {"loss": "binary_crossentropy", "sample_weight": True,
         "y_transform": lambda y: (y % 2).astype(np.float32)}, True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_team_trains_bitwise_like_per_batch_path(name):
    build, opt, options, head = CASES[name]
    ref = _fit(build, opt, use_fused=False, **options)
    assert ref[2] == [None], "the reference must use the per-batch path"
    for threads in (1, 2, 3):
        got = _fit(build, opt, use_fused=True, threads=threads, **options)
        layout = got[2][0]
        assert layout is not None, "expected the fused loop"
        if threads == 1:
            assert layout == {"threads": 1, "head": None}
        else:
            assert layout["threads"] >= 2, layout
            assert (layout["head"] is not None) == head, layout
        _assert_bitwise(ref, got)


def test_team_float64():
    keras.config.set_floatx("float64")
    ref = _fit(head_with_dropout, keras.optimizers.Adam, use_fused=False)
    got = _fit(head_with_dropout, keras.optimizers.Adam, use_fused=True, threads=2)
    assert got[2][0]["head"] is not None
    assert ref[0].get_weights()[0].dtype == np.float64
    _assert_bitwise(ref, got)


def test_team_resumes_exactly_across_fits():
    """Private head columns are copied back after every chunk: two fits of
    one epoch each equal one fit of two epochs."""
    x, y = _data()
    weights = []
    for splits in ((2,), (1, 1)):
        keras.set_num_threads(2)
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input(shape=(N_FEATURES,))] + head_with_dropout())
        m.compile("adam", "sparse_categorical_crossentropy")
        for e in splits:
            m.fit(x, y, epochs=e, batch_size=32, verbose=0)
        weights.append(m.get_weights() + m.optimizer.variables)
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


CHILD = """
import numpy as np, nncore as keras
asked = []
rng = np.random.default_rng(0)
x = rng.normal(0, 1, (300, 784)).astype(np.float32); y = rng.integers(0, 10, 300)
out = []
for fused in (False, True):
    keras.set_num_threads(2)
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(100, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile("rmsprop", "sparse_categorical_crossentropy")
    m.use_fused = fused
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    if m._last_route.layout() is not None:
        asked.append(m._last_route.layout())
    out.append(m.get_weights())
print(asked, all(np.array_equal(a, b) for a, b in zip(*out)))
"""


def test_team_smaller_than_asked():
    """With OMP_THREAD_LIMIT=1 OpenMP gives the loop one thread where it asked
    for two: the shares are sized by the team it got, and nothing changes."""
    from conftest import child_env
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                       timeout=300, env=child_env(OMP_THREAD_LIMIT=1))
    assert r.returncode == 0, r.stderr
    # the loop asked for a team of 2 with a split head, got 1 thread, and
    # still trained exactly like the per-batch path
    assert r.stdout.strip() == "[{'threads': 2, 'head': (0, 1)}] True", r.stdout


def test_thread_count_may_change_between_chunks(monkeypatch):
    """The chooser may hand each chunk a different team size (1, 2, 3, 1, ...)
    and the training is still bitwise the per-batch path's."""
    picked = []

    class Cycling(loop.ThreadChooser):
        def pick(self):
            picked.append(1 + len(picked) % 3)
            return picked[-1]

    monkeypatch.setattr(loop, "ThreadChooser", Cycling)
    monkeypatch.setattr(loop, "TARGET_SECONDS", 0.0)      # many small chunks
    ref = _fit(head_with_dropout, keras.optimizers.Adam, use_fused=False)
    picked.clear()
    got = _fit(head_with_dropout, keras.optimizers.Adam, use_fused=True, threads=3)
    assert len(picked) > 10 and set(picked) == {1, 2, 3}
    _assert_bitwise(ref, got)


def test_thread_chooser_uses_the_fastest_and_retries_the_others():
    c = loop.ThreadChooser(4)
    assert c.candidates == [4, 2, 1]
    speed = {4: 2e-4, 2: 1e-4, 1: 3e-4}         # here 2 threads win
    chosen = []
    for _ in range(200):
        t = c.pick()
        chosen.append(t)
        c.record(t, speed[t] * 100, 100)
    assert chosen[:3] == [4, 2, 1]              # each candidate timed once first
    assert chosen.count(2) > 150                 # then mostly the fastest...
    assert {4, 1} <= set(chosen[3:])             # ...but the others are retried
    c.record(1, 1e-3, 1)                         # too short to count
    assert c.estimate(1) == speed[1]
    assert loop.ThreadChooser(1).candidates == [1]


def test_thread_chooser_forgives_one_slow_chunk_but_follows_a_lasting_change():
    c = loop.ThreadChooser(2)
    c.record(c.pick(), 0.010, 100)               # team: 100 us/step
    c.record(c.pick(), 0.015, 100)               # one thread: 150 us/step
    c.record(2, 0.040, 100)                      # one chunk slowed by another program
    assert c.pick() == 2
    for _ in range(40):                          # the machine stays busy: team 300 us/step
        t = c.pick()
        c.record(t, 0.030 if t == 2 else 0.015, 100)
    assert c.pick() == 1
