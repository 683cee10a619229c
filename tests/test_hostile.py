"""Reliability round 2 (issue 15): nncore used as a hostile user would.

Classes of cases: state changed after fit, objects shared between models,
threads, dtype mixes, extreme values, and valid-but-unusual input.  Each
case must end *clean* (an exception naming the argument, the model still
usable) or *correct* (equal to the serial / contiguous result) -- never a
crash, a hang, or silent garbage.

Anything that could crash runs in a child process under a 4 GiB address
limit and a time limit, so a segfault fails one test instead of the run;
pure argument checks run in this process.  (The file-system cases -- links,
modes, signals during save, hostile archives -- are in test_save_safety.py
and test_fuzz_files.py.)
"""
import os
import re
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import nncore as keras

L = keras.layers
IS_POSIX = os.name == "posix"

PRELUDE = textwrap.dedent('''
    import gc, re, sys, threading, warnings
    import numpy as np
    import nncore as keras
    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 12)).astype(np.float32)
    y = rng.integers(0, 4, 64)

    def mk(units=8, **kw):
        return keras.Sequential([L.Input(shape=(12,)), L.Dense(units, activation="relu", **kw),
                                 L.Dense(4, activation="softmax")])

    def compiled(m=None, opt="adam", **kw):
        m = m or mk()
        m.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"], **kw)
        return m

    def refused(fn, exc, match):
        try:
            fn()
        except exc as e:
            assert re.search(match, str(e)), f"message {e!s} lacks {match!r}"
            return str(e)
        raise AssertionError(f"not refused (expected {exc.__name__}: {match})")

    def usable(m, epochs=1):
        m.fit(x, y, epochs=epochs, verbose=0)
        p = m.predict(x, verbose=0)
        assert np.isfinite(p).all() and np.isfinite(m.evaluate(x, y, verbose=0)).all()
        for w in m.get_weights():
            assert np.isfinite(w).all()
''')


def run_child(code, env_extra=None, timeout=90):
    from conftest import child_env
    env = child_env(OPENBLAS_NUM_THREADS="1", **(env_extra or {}))

    def limit():
        # (not under ASan: its shadow memory alone reserves terabytes of addresses)
        if IS_POSIX and not os.environ.get("NNCORE_UNDER_ASAN"):
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)
                           + "\nprint('DONE')\n"],
                          env=env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit if IS_POSIX else None)


# ---------------------------------------------------------------------------
# cases that could crash a process: each in its own child
# ---------------------------------------------------------------------------
CHILD = {
    # --- state changed after fit -------------------------------------------
    "one_optimizer_two_models": """
        opt = keras.optimizers.Adam()
        a, b = compiled(mk(), opt), compiled(mk(50), opt)
        a.fit(x, y, verbose=0)
        refused(lambda: b.fit(x, y, verbose=0), ValueError, "not one this optimizer was built for")
        usable(a)
        b.compile("adam", "sparse_categorical_crossentropy")    # a fresh optimizer: fine
        usable(b)
    """,
    "one_optimizer_two_models_per_batch": """
        opt = keras.optimizers.RMSprop()
        a, b = compiled(mk(), opt), compiled(mk(50), opt)
        a.use_fused = b.use_fused = False
        a.fit(x, y, verbose=0)
        refused(lambda: b.fit(x, y, verbose=0), ValueError, "compile with a new optimizer")
        refused(lambda: b.train_on_batch(x, y), ValueError, "not one this optimizer")
        usable(a)
    """,
    "pop_and_add_wider_layer": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.pop(); m.pop()
        m.add(L.Dense(50, activation="relu")); m.add(L.Dense(4, activation="softmax"))
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "not one this optimizer")
        m.compile("adam", "sparse_categorical_crossentropy")
        usable(m)
    """,
    "replace_output_layer_same_shape": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.pop(); m.add(L.Dense(4, activation="softmax"))
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "compile with a new optimizer")
        refused(lambda: m.train_on_batch(x, y), ValueError, "compile with a new optimizer")
        assert np.isfinite(m.predict(x, verbose=0)).all()
    """,
    "freeze_then_unfreeze": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.layers[0].trainable = False
        w0 = m.layers[0].get_weights()
        m.fit(x, y, verbose=0, epochs=2)
        assert all(np.array_equal(a, b) for a, b in zip(w0, m.layers[0].get_weights()))
        m.layers[0].trainable = True
        m.fit(x, y, verbose=0)
        assert not np.array_equal(w0[0], m.layers[0].get_weights()[0])
        usable(m)
    """,
    "freeze_whole_model_before_first_fit_then_unfreeze": """
        m = compiled()
        m.trainable = False
        m.fit(x, y, verbose=0)
        m.trainable = True
        w0 = [w.copy() for w in m.get_weights()]
        m.fit(x, y, verbose=0)
        assert any(not np.array_equal(a, b) for a, b in zip(w0, m.get_weights()))
    """,
    "freeze_after_steps_then_unfreeze_per_batch": """
        m = compiled(opt="sgd")
        m.use_fused = False
        m.fit(x, y, verbose=0)
        m.layers[1].trainable = False
        m.fit(x, y, verbose=0)
        m.layers[1].trainable = True
        usable(m)
    """,
    "add_dropout_after_fit": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.pop(); m.add(L.Dropout(0.5)); m.add(L.Dense(4, activation="softmax"))
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "optimizer")
        m.compile("adam", "sparse_categorical_crossentropy"); usable(m)
    """,
    "kernel_array_rebound_wrong_shape": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.layers[0].kernel.value = np.zeros((12, 3), np.float32)
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "")
    """,
    "kernel_array_rebound_float64": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.layers[0].kernel.value = np.zeros((12, 8), np.float64)
        try:
            m.fit(x, y, verbose=0)      # the per-batch path casts; never a crash
        except (ValueError, TypeError) as e:
            print("refused:", e)
    """,
    "kernel_array_rebound_noncontiguous": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.layers[0].kernel.value = np.zeros((8, 12), np.float32).T
        try:
            m.fit(x, y, verbose=0)
        except (ValueError, TypeError) as e:
            print("refused:", e)
    """,
    "gradient_array_replaced": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.layers[0].grads[0] = np.zeros(3, np.float32)
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "")
    """,
    "optimizer_slot_replaced": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.optimizer.slots[0]["m"] = np.zeros((2, 2), np.float32)
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "slot 'm'")
        refused(lambda: m.train_on_batch(x, y), ValueError, "slot 'm'")
    """,
    "activation_changed_to_nonsense": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.layers[0].activation = "bogus"
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "bogus")
        m.use_fused = False
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "bogus")
    """,
    "dropout_rate_changed_to_nonsense": """
        m = compiled(keras.Sequential([L.Input(shape=(12,)), L.Dense(8), L.Dropout(0.2),
                                       L.Dense(4, activation="softmax")]))
        m.fit(x, y, verbose=0)
        m.layers[1].rate = 1.5
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "rate")
    """,
    "learning_rate_set_to_nonsense": """
        m = compiled()
        refused(lambda: setattr(m.optimizer, "learning_rate", -1.0), ValueError, "learning_rate")
        refused(lambda: setattr(m.optimizer, "learning_rate", float("nan")), ValueError,
                "learning_rate")
        usable(m)
    """,
    "set_weights_wrong_after_fit": """
        m = compiled()
        m.fit(x, y, verbose=0)
        ws = m.get_weights()
        refused(lambda: m.set_weights(ws[:-1]), ValueError, "weight arrays")
        refused(lambda: m.set_weights([w.T for w in ws]), ValueError, "shape")
        refused(lambda: m.set_weights([w * np.nan for w in ws]), ValueError, "NaN")
        usable(m)
    """,
    "recompile_with_other_loss_and_targets": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "one-hot")
        m.fit(x, np.eye(4)[y], verbose=0)
        assert np.isfinite(m.predict(x, verbose=0)).all()
    """,
    "recompile_in_callback": """
        m = compiled(opt=keras.optimizers.SGD(0.0))
        class Switch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 0:
                    self.model.compile(keras.optimizers.Adam(0.01),
                                       "sparse_categorical_crossentropy")
        w0 = [w.copy() for w in m.get_weights()]
        m.fit(x, y, epochs=2, verbose=0, callbacks=[Switch()])
        assert m.optimizer.iterations == 2
        assert any(not np.array_equal(a, b) for a, b in zip(w0, m.get_weights()))
    """,
    "pop_every_layer_then_fit": """
        m = compiled()
        m.fit(x, y, verbose=0)
        m.pop(); m.pop()
        refused(lambda: m.fit(x, y, verbose=0), ValueError, "no layers")
        refused(lambda: m.predict(x, verbose=0), ValueError, "no layers")
    """,
    # --- objects shared between models ------------------------------------
    "shared_layer_two_models": """
        shared = L.Dense(8, activation="relu")
        a = compiled(keras.Sequential([L.Input(shape=(12,)), shared, L.Dense(4, activation="softmax")]))
        b = compiled(keras.Sequential([L.Input(shape=(12,)), shared, L.Dense(4, activation="softmax")]))
        a.fit(x, y, verbose=0); b.fit(x, y, verbose=0); usable(a); usable(b)
    """,
    "shared_layer_other_input_width": """
        shared = L.Dense(8, activation="relu")
        a = compiled(keras.Sequential([L.Input(shape=(12,)), shared, L.Dense(4, activation="softmax")]))
        refused(lambda: keras.Sequential([L.Input(shape=(5,)), shared]), ValueError, "built for")
        usable(a)
    """,
    "shared_loss_and_metric_objects": """
        loss = keras.losses.SparseCategoricalCrossentropy()
        acc = keras.metrics.SparseCategoricalAccuracy()
        a, b = mk(), mk()
        a.compile("adam", loss, metrics=[acc]); b.compile("sgd", loss, metrics=[acc])
        ha = a.fit(x, y, verbose=0).history; hb = b.fit(x, y, verbose=0).history
        assert 0 <= ha["sparse_categorical_accuracy"][0] <= 1 and 0 <= hb["sparse_categorical_accuracy"][0] <= 1
    """,
    "shared_callback_instance": """
        es = keras.callbacks.EarlyStopping(monitor="loss", patience=1)
        a, b = compiled(), compiled()
        a.fit(x, y, epochs=3, verbose=0, callbacks=[es]); b.fit(x, y, epochs=3, verbose=0, callbacks=[es])
        usable(a); usable(b)
    """,
    "same_optimizer_recompiled_same_model": """
        opt = keras.optimizers.Adam()
        m = compiled(opt=opt); m.fit(x, y, verbose=0)
        m.compile(opt, "sparse_categorical_crossentropy"); m.fit(x, y, verbose=0)
        assert opt.iterations == 4
    """,
    "clone_is_independent": """
        a = compiled(); a.fit(x, y, verbose=0)
        b = keras.models.clone_model(a); b.compile("adam", "sparse_categorical_crossentropy")
        wa = [w.copy() for w in a.get_weights()]
        b.fit(x, y, verbose=0)
        assert all(np.array_equal(p, q) for p, q in zip(wa, a.get_weights()))
    """,
    # --- threads -------------------------------------------------------------
    "predict_from_four_threads": """
        m = compiled(); m.fit(x, y, verbose=0)
        big = rng.normal(size=(3000, 12)).astype(np.float32)
        serial = m.predict(big, verbose=0, batch_size=64)
        out = [None] * 20
        def work(i):
            out[i] = m.predict(big, verbose=0, batch_size=64)
        ts = [threading.Thread(target=work, args=(i,)) for i in range(20)]
        [t.start() for t in ts]; [t.join() for t in ts]
        assert all(np.array_equal(o, serial) for o in out)
    """,
    "evaluate_and_call_from_threads": """
        m = compiled(); m.fit(x, y, verbose=0)
        serial_eval = m.evaluate(x, y, verbose=0)
        serial_call = m(x)
        res = []
        def work():
            res.append((m.evaluate(x, y, verbose=0), m(x), m.test_on_batch(x, y)))
        ts = [threading.Thread(target=work) for _ in range(8)]
        [t.start() for t in ts]; [t.join() for t in ts]
        assert len(res) == 8
        for ev, call, tob in res:
            assert ev == serial_eval and np.array_equal(call, serial_call)
    """,
    "kept_forward_results_are_distinct": """
        d = L.Dense(3); d.build((None, 12))
        a = d.forward(x[:4]); b = d.forward(x[4:8])
        assert a is not b and not np.shares_memory(a, b)
        assert np.allclose(a, x[:4] @ d.kernel.value + d.bias.value)
    """,
    "thread_count_reaches_worker_threads": """
        from nncore._ext import config
        keras.set_num_threads(1)
        seen = []
        def work():
            m = compiled(); m.fit(x, y, verbose=0)
            seen.append(config.get_num_threads())
        t = threading.Thread(target=work); t.start(); t.join()
        assert seen == [1], seen
    """,
    "fit_while_fit_in_another_thread": """
        m = compiled()
        started, release = threading.Event(), threading.Event()
        class Hold(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                started.set(); release.wait(30)
        t = threading.Thread(target=lambda: m.fit(x, y, verbose=0, callbacks=[Hold()]))
        t.start(); started.wait(30)
        refused(lambda: m.fit(x, y, verbose=0), RuntimeError, "another thread")
        refused(lambda: m.train_on_batch(x, y), RuntimeError, "another thread")
        assert np.isfinite(m.predict(x, verbose=0)).all()    # inference stays allowed
        release.set(); t.join()
        usable(m)
    """,
    "predict_during_per_batch_fit_does_not_disturb_it": """
        def train(with_predict):
            keras.utils.set_random_seed(3)
            m = compiled(); m.use_fused = False
            stop = threading.Event()
            def spam():
                while not stop.is_set():
                    m.predict(x, verbose=0)
            t = threading.Thread(target=spam)
            if with_predict: t.start()
            m.fit(x, y, epochs=3, batch_size=8, verbose=0)
            stop.set()
            if with_predict: t.join()
            return m.get_weights()
        for a, b in zip(train(False), train(True)):
            assert np.array_equal(a, b)
    """,
    "two_models_trained_in_two_threads": """
        def train(seed, out):
            keras.utils.set_random_seed(seed)
            m = compiled(mk(32)); m.fit(x, y, epochs=3, verbose=0)
            out.append(m.get_weights())
        serial = []
        train(1, serial); train(2, serial)
        got = [[], []]
        # seeds are drawn at model creation: build both first, then train together
        keras.utils.set_random_seed(1); a = compiled(mk(32))
        keras.utils.set_random_seed(2); b = compiled(mk(32))
        ts = [threading.Thread(target=lambda m=m, o=o: (m.fit(x, y, epochs=3, verbose=0, shuffle=False), o.append(m.get_weights())))
              for m, o in ((a, got[0]), (b, got[1]))]
        [t.start() for t in ts]; [t.join() for t in ts]
        keras.utils.set_random_seed(1); a2 = compiled(mk(32)); a2.fit(x, y, epochs=3, verbose=0, shuffle=False)
        for p, q in zip(got[0][0], a2.get_weights()):
            assert np.array_equal(p, q)
    """,
    "huge_thread_count_refused_then_predict": """
        refused(lambda: keras.set_num_threads(100000), ValueError, "set_num_threads")
        m = mk()
        assert m.predict(rng.normal(size=(8192, 12)), verbose=0).shape == (8192, 4)
    """,
    "huge_OMP_NUM_THREADS_is_capped": """
        m = compiled(mk(256))
        assert m.predict(rng.normal(size=(8192, 12)), verbose=0).shape == (8192, 4)
        m.fit(x, y, verbose=0)
    """,
    # --- dtype mixes -------------------------------------------------------------
    "float64_layer_in_float32_model": """
        m = compiled(keras.Sequential([L.Input(shape=(12,)), L.Dense(8, activation="relu", dtype="float64"),
                                       L.Dense(4, activation="softmax")]))
        usable(m, epochs=2)
        refused(lambda: m.predict(x[:, :5], verbose=0), ValueError, "incompatible")
        gc.collect()
    """,
    "mixed_dtype_model_from_a_crafted_file": """
        import json, os, tempfile, zipfile
        d = tempfile.mkdtemp()
        m = compiled(); m.fit(x, y, verbose=0)
        p = os.path.join(d, "m.npz"); m.save(p)
        # rewrite the file: the first layer now says float64 (its arrays stay float32)
        with zipfile.ZipFile(p) as z:
            members = {n: z.read(n) for n in z.namelist()}
        meta = bytes(np.load(p)["metadata"])
        assert b'"dtype":"float32"' in meta
        import io
        buf = io.BytesIO()
        np.save(buf, np.frombuffer(meta.replace(b'"dtype":"float32"', b'"dtype":"float64"', 1),
                                   np.uint8))
        members["metadata.npy"] = buf.getvalue()
        q = os.path.join(d, "crafted.npz")
        with zipfile.ZipFile(q, "w") as z:
            for n, data in members.items():
                z.writestr(n, data)
        try:
            m2 = keras.models.load_model(q)
        except Exception as e:            # refused cleanly is fine too
            print("refused:", type(e).__name__, e)
        else:
            assert {w.dtype for w in m2.get_weights()} >= {np.dtype(np.float64)}
            refused(lambda: m2.predict(x[:, :3], verbose=0), ValueError, "incompatible")
            gc.collect()
            usable(m2, epochs=2)
            gc.collect()
    """,
    "float32_layer_in_float64_model": """
        m = compiled(keras.Sequential([L.Input(shape=(12,)), L.Dense(8, activation="relu", dtype="float64"),
                                       L.Dense(4, activation="softmax", dtype="float32")]))
        with keras.backend.use("numpy"):
            usable(m)
        usable(m)
    """,
    "float64_model_whole": """
        keras.config.set_floatx("float64")
        m = compiled(); usable(m, epochs=2)
        assert m.get_weights()[0].dtype == np.float64
    """,
    "mixed_dtypes_set_weights_float64_into_float32": """
        m = compiled()
        m.set_weights([w.astype(np.float64) for w in m.get_weights()])
        assert m.get_weights()[0].dtype == np.float32
        usable(m)
    """,
    # --- extreme values -------------------------------------------------------------
    "inputs_near_float32_limit": """
        m = compiled()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m.fit(x * 1e30, y, epochs=2, verbose=0)
        assert any("scale them" in str(i.message) for i in w), [str(i.message) for i in w]
    """,
    "inputs_beyond_float32": """
        m = compiled()
        refused(lambda: m.fit(x.astype(np.float64) * 1e300, y, verbose=0), ValueError, "too large")
        usable(m)
    """,
    "huge_sample_weight": """
        m = compiled()
        refused(lambda: m.fit(x, y, sample_weight=np.full(64, 1e300), verbose=0), ValueError,
                "does not fit in float32")
        usable(m)
    """,
    "huge_class_weight_value": """
        m = compiled()
        refused(lambda: m.fit(x, y, class_weight={0: 1e300}, verbose=0), ValueError, "does not fit")
        usable(m)
    """,
    "huge_class_weight_key": """
        m = compiled()
        refused(lambda: m.fit(x, y, class_weight={10**12: 1.0}, verbose=0), ValueError,
                "not a class of this model")
        usable(m)
    """,
    "tiny_epsilon_rejected": """
        for opt in (keras.optimizers.Adam, keras.optimizers.RMSprop, keras.optimizers.Adagrad):
            refused(lambda: opt(epsilon=0), ValueError, "epsilon")
            refused(lambda: opt(epsilon=float("nan")), ValueError, "epsilon")
    """,
    "huge_learning_rate_gives_warning_not_crash": """
        m = compiled(opt=keras.optimizers.SGD(1e30))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m.fit(x, y, epochs=2, verbose=0)
        assert any("NaN or inf" in str(i.message) for i in w)
    """,
    "terminate_on_nan_still_stops": """
        m = compiled(opt=keras.optimizers.SGD(1e30))
        h = m.fit(x, y, epochs=5, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])
        assert len(h.history["loss"]) == 1
    """,
    # --- valid input that must be accepted -------------------------------------------
    "read_only_inputs": """
        m = compiled()
        xr, yr = x.copy(), y.astype(np.int32)
        xr.flags.writeable = False; yr.flags.writeable = False
        sw = np.ones(64, np.float32); sw.flags.writeable = False
        m.fit(xr, yr, sample_weight=sw, verbose=0); m.evaluate(xr, yr, verbose=0)
        assert np.isfinite(m.predict(xr, verbose=0)).all()
        m.use_fused = False; m.fit(xr, yr, verbose=0)
        with keras.backend.use("numpy"):
            m.fit(xr, yr, verbose=0)
    """,
    "read_only_onehot_targets": """
        m = mk(); m.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
        t = np.eye(4, dtype=np.float32)[y]; t.flags.writeable = False
        m.fit(x, t, verbose=0); m.evaluate(x, t, verbose=0)
    """,
    "read_only_memmap": """
        import tempfile, os
        d = tempfile.mkdtemp()
        p = os.path.join(d, "x.dat")
        mm = np.memmap(p, dtype=np.float32, mode="w+", shape=x.shape); mm[:] = x; mm.flush(); del mm
        ro = np.memmap(p, dtype=np.float32, mode="r", shape=x.shape)
        m = compiled(); m.fit(ro, y, verbose=0)
        assert np.array_equal(m.predict(ro, verbose=0), m.predict(x, verbose=0))
    """,
    "pandas_dataframe_and_series": """
        import pandas as pd
        df = pd.DataFrame(x, columns=[f"f{i}" for i in range(12)]); s = pd.Series(y)
        m = compiled(); m.fit(df, s, verbose=0)
        assert np.array_equal(m.predict(df, verbose=0), m.predict(x, verbose=0))
        m.evaluate(df, s, verbose=0)
    """,
    "non_contiguous_inputs_equal_contiguous": """
        xf = np.asfortranarray(x); xs = np.repeat(x, 2, axis=0)[::2]
        keras.utils.set_random_seed(1); a = compiled(); a.fit(x, y, epochs=2, verbose=0)
        keras.utils.set_random_seed(1); b = compiled(); b.fit(xf, y, epochs=2, verbose=0)
        keras.utils.set_random_seed(1); c = compiled(); c.fit(xs, y, epochs=2, verbose=0)
        for p, q, r in zip(a.get_weights(), b.get_weights(), c.get_weights()):
            assert np.array_equal(p, q) and np.array_equal(p, r)
    """,
}


@pytest.mark.parametrize("name", list(CHILD))
def test_hostile_case_in_child(name):
    env = {"OMP_NUM_THREADS": "100000"} if name == "huge_OMP_NUM_THREADS_is_capped" else None
    if name == "pandas_dataframe_and_series":
        pytest.importorskip("pandas")
    r = run_child(CHILD[name], env)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("DONE"), \
        f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"


# ---------------------------------------------------------------------------
# argument checks (no kernel is reached): in this process
# ---------------------------------------------------------------------------
def _x(n=64):
    return np.random.default_rng(0).normal(size=(n, 12)).astype(np.float32)


def _y(n=64):
    return np.random.default_rng(1).integers(0, 4, n)


def _model(opt="adam"):
    m = keras.Sequential([L.Input(shape=(12,)), L.Dense(8, activation="relu"),
                          L.Dense(4, activation="softmax")])
    m.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


REFUSALS = {
    "layer_dtype_float16": (lambda: L.Dense(3, dtype="float16"), ValueError, "float16"),
    "layer_dtype_int32": (lambda: L.Dense(3, dtype="int32"), ValueError, "int32"),
    "layer_dtype_policy": (lambda: L.Dense(3, dtype="mixed_float16"), ValueError, "mixed_float16"),
    "layer_dtype_garbage": (lambda: L.Dropout(0.1, dtype="banana"), ValueError, "banana"),
    "adam_epsilon_zero": (lambda: keras.optimizers.Adam(epsilon=0), ValueError, "epsilon"),
    "rmsprop_epsilon_negative": (lambda: keras.optimizers.RMSprop(epsilon=-1e-7), ValueError,
                                 "epsilon"),
    "adagrad_epsilon_inf": (lambda: keras.optimizers.Adagrad(epsilon=float("inf")), ValueError,
                            "epsilon"),
    "weight_decay_negative": (lambda: keras.optimizers.SGD(weight_decay=-0.1), ValueError,
                              "weight_decay"),
    "weight_decay_nan": (lambda: keras.optimizers.Adam(weight_decay=float("nan")), ValueError,
                         "weight_decay"),
    "clipnorm_negative": (lambda: keras.optimizers.Adam(clipnorm=-1.0), ValueError, "clipnorm"),
    "clipvalue_negative": (lambda: keras.optimizers.Adam(clipvalue=-1.0), ValueError,
                           "clipvalue"),
    "global_clipnorm_zero": (lambda: keras.optimizers.SGD(global_clipnorm=0.0), ValueError,
                             "global_clipnorm"),
    "clipnorm_string": (lambda: keras.optimizers.SGD(clipnorm="1"), ValueError, "clipnorm"),
    "learning_rate_inf": (lambda: keras.optimizers.SGD(float("inf")), ValueError,
                          "learning_rate"),
    "threads_zero": (lambda: keras.set_num_threads(0), ValueError, "set_num_threads"),
    "threads_float": (lambda: keras.set_num_threads(1.5), ValueError, "set_num_threads"),
    "threads_bool": (lambda: keras.set_num_threads(True), ValueError, "set_num_threads"),
    "threads_huge": (lambda: keras.set_num_threads(10 ** 6), ValueError, "set_num_threads"),
    "validation_batch_size_zero": (lambda: _model().fit(_x(), _y(), validation_split=0.25,
                                                        validation_batch_size=0, verbose=0),
                                   ValueError, "validation_batch_size"),
    "validation_batch_size_negative": (lambda: _model().fit(_x(), _y(), validation_batch_size=-3,
                                                            verbose=0),
                                       ValueError, "validation_batch_size"),
    "scalar_y": (lambda: _model().fit(_x(), 3, verbose=0), ValueError, "single value"),
    "scalar_y_evaluate": (lambda: _model().evaluate(_x(), np.int64(2), verbose=0), ValueError,
                          "single value"),
    "string_sample_weight": (lambda: _model().fit(_x(), _y(), sample_weight=["a"] * 64,
                                                  verbose=0), TypeError, "sample_weight"),
    "nan_sample_weight": (lambda: _model().fit(_x(), _y(), sample_weight=np.full(64, np.nan),
                                               verbose=0), ValueError, "sample_weight"),
    "negative_sample_weight": (lambda: _model().fit(_x(), _y(), sample_weight=-np.ones(64),
                                                    verbose=0), ValueError, "sample_weight"),
    "short_sample_weight": (lambda: _model().fit(_x(), _y(), sample_weight=np.ones(5),
                                                 verbose=0), ValueError, "5 entries"),
    "class_weight_string_key": (lambda: _model().fit(_x(), _y(), class_weight={"a": 1.0},
                                                     verbose=0), TypeError, "class_weight"),
    "class_weight_negative_key": (lambda: _model().fit(_x(), _y(), class_weight={-1: 1.0},
                                                       verbose=0), TypeError, "class_weight"),
    "class_weight_key_past_classes": (lambda: _model().fit(_x(), _y(), class_weight={4: 1.0},
                                                           verbose=0),
                                      ValueError, "not a class"),
    "class_weight_nan_value": (lambda: _model().fit(_x(), _y(), class_weight={0: float("nan")},
                                                    verbose=0), ValueError, "class_weight"),
    "class_weight_not_dict": (lambda: _model().fit(_x(), _y(), class_weight=[1.0, 2.0],
                                                   verbose=0), TypeError, "class_weight"),
    "x_with_nan": (lambda: _model().fit(np.full((4, 12), np.nan), np.zeros(4), verbose=0),
                   ValueError, "NaN"),
    "x_with_inf_predict": (lambda: _model().predict(np.full((4, 12), np.inf), verbose=0),
                           ValueError, "NaN or inf"),
    "x_complex": (lambda: _model().predict(np.ones((4, 12), np.complex64), verbose=0),
                  TypeError, "numeric"),
    "x_strings": (lambda: _model().predict(np.array([["a"] * 12] * 4), verbose=0), TypeError,
                  "numeric"),
    "x_empty": (lambda: _model().fit(np.zeros((0, 12), np.float32), np.zeros(0), verbose=0),
                ValueError, "empty"),
    "x_wrong_width": (lambda: _model().fit(_x()[:, :5], _y(), verbose=0), ValueError,
                      "incompatible"),
    "y_strings": (lambda: _model().fit(_x(4), np.array(["a", "b", "c", "d"]), verbose=0),
                  TypeError, "labels must be integers"),
    "y_out_of_range": (lambda: _model().fit(_x(), _y() + 4, verbose=0), ValueError,
                       "out of range"),
    "y_fractional": (lambda: _model().fit(_x(4), np.array([0.5, 1, 2, 3]), verbose=0),
                     ValueError, "whole numbers"),
    "y_wrong_length": (lambda: _model().fit(_x(), _y(63), verbose=0), ValueError,
                       "different numbers of samples"),
    "batch_size_zero": (lambda: _model().fit(_x(), _y(), batch_size=0, verbose=0), ValueError,
                        "batch_size"),
    "batch_size_float": (lambda: _model().fit(_x(), _y(), batch_size=2.5, verbose=0),
                         ValueError, "batch_size"),
    "epochs_negative": (lambda: _model().fit(_x(), _y(), epochs=-1, verbose=0), ValueError,
                        "epochs"),
    "steps_per_epoch_zero": (lambda: _model().fit(_x(), _y(), steps_per_epoch=0, verbose=0),
                             ValueError, "steps_per_epoch"),
    "validation_split_one": (lambda: _model().fit(_x(), _y(), validation_split=1.0, verbose=0),
                             ValueError, "validation_split"),
    "dropout_rate_one": (lambda: L.Dropout(1.0), ValueError, "rate"),
    "dense_units_zero": (lambda: L.Dense(0), ValueError, "units"),
    "keras_model_bare": (lambda: keras.Model(), TypeError, "Sequential"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refused_with_a_clear_message(name):
    fn, exc, match = REFUSALS[name]
    with pytest.raises(exc, match=match):
        fn()


@pytest.mark.parametrize("what", ["fit", "evaluate", "predict"])
def test_model_still_usable_after_each_refusal(what):
    """A refused call changes nothing: the same model then gives the same
    results as a model that was never sent bad input."""
    keras.utils.set_random_seed(9)
    a = _model()
    keras.utils.set_random_seed(9)
    b = _model()
    bad = np.full((4, 12), np.nan)
    with pytest.raises(ValueError):
        if what == "predict":
            a.predict(bad, verbose=0)
        else:
            getattr(a, what)(bad, np.zeros(4), verbose=0)
    for m in (a, b):
        keras.utils.set_random_seed(10)          # the same shuffles for both
        m.fit(_x(), _y(), epochs=1, verbose=0)
    for p, q in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(p, q)


def test_bool_and_integer_inputs_are_converted():
    m = _model()
    xb = _x() > 0
    m.fit(xb, _y(), verbose=0)
    np.testing.assert_array_equal(m.predict(xb, verbose=0), m.predict(xb.astype(np.float32),
                                                                      verbose=0))
    xi = (_x() * 10).astype(np.int64)
    np.testing.assert_array_equal(m.predict(xi, verbose=0),
                                  m.predict(xi.astype(np.float32), verbose=0))


def test_list_input_equals_array_input():
    m = _model()
    x = _x(8)
    np.testing.assert_array_equal(m.predict(x.tolist(), verbose=0), m.predict(x, verbose=0))


def test_batch_size_larger_than_data_and_one():
    for bs in (1, 10 ** 6):
        m = _model("sgd")
        h = m.fit(_x(16), _y(16), batch_size=bs, verbose=0)
        assert m.optimizer.iterations == (16 if bs == 1 else 1)
        assert np.isfinite(h.history["loss"][0])


def test_frozen_layer_weights_do_not_move_on_any_path():
    for use_fused in (True, False):
        m = _model()
        m.layers[0].trainable = False
        w0 = m.layers[0].get_weights()
        m.use_fused = use_fused
        m.fit(_x(), _y(), epochs=2, verbose=0)
        for a, b in zip(w0, m.layers[0].get_weights()):
            assert np.array_equal(a, b)


def test_deepcopy_of_a_trained_model_is_independent():
    import copy
    m = _model()
    m.fit(_x(), _y(), verbose=0)
    m.predict(_x(4), verbose=0)            # leaves per-thread layer state behind
    c = copy.deepcopy(m)
    np.testing.assert_array_equal(c.predict(_x(4), verbose=0), m.predict(_x(4), verbose=0))
    c.fit(_x(), _y(), verbose=0)            # its own lock, optimizer and weights
    assert not np.array_equal(c.get_weights()[0], m.get_weights()[0])
    m.fit(_x(), _y(), verbose=0)
