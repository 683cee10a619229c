"""Damaged or hostile model files must never crash, hang or exhaust memory.

A small model is saved, then ~240 seeded mutations of the file are loaded:

  * bit flips at random offsets (anywhere, in the headers, in the zip directory),
  * truncation at random lengths, random garbage over a byte range,
  * two members' contents swapped (the archive rewritten with valid CRCs),
  * JSON metadata edits: huge units (10**12), negative / zero / huge shapes,
    wrong types, unknown class names, missing keys, deep nesting, ...
  * member-level damage: a member dropped, an extra or pickled member, an .npy
    header that lies about its shape (claims gigabytes),
  * the same for a ``.weights.npz`` file loaded with ``load_weights``.

``load_model`` (or ``load_weights``) must either succeed with a usable model
(``predict`` works and is finite) or raise one of ``ALLOWED`` -- never
segfault, hang, or allocate without bound.  The loop runs in a child process
(so a segfault fails this test instead of killing pytest) under
``RLIMIT_AS`` = 2 GiB, with ``signal.alarm`` per case and an overall timeout.

Run by hand for more cases:  python tests/test_fuzz_files.py --child OUT_DIR SEED N
"""
import io
import json
import os
import signal
import subprocess
import sys
import traceback
import zipfile

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

#: what a damaged file may raise (nncore's FormatError is a ValueError)
ALLOWED = (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile)
N_CASES = 240
MEMORY_LIMIT = 2 * 2 ** 30
CASE_SECONDS = 10
TOTAL_SECONDS = 120


class CaseTimeout(BaseException):
    """Raised by SIGALRM in the child when one case runs too long."""


# ================================================================= child side
def _npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=arr.dtype.hasobject)
    return buf.getvalue()


def _members(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def _write(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def _read_meta(members):
    for name, data in members:
        if name == "metadata.npy":
            arr = np.lib.format.read_array(io.BytesIO(data))
            return json.loads(arr.tobytes().decode("utf-8"))
    raise AssertionError("no metadata member")


def _meta_npy(obj, raw_text=None):
    text = raw_text if raw_text is not None else json.dumps(obj)
    return _npy(np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy())


def _json_slots(obj, path=()):
    """Every (container, key) in a JSON object, for random edits."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((obj, k, path + (k,)))
            out += _json_slots(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((obj, i, path + (i,)))
            out += _json_slots(v, path + (i,))
    return out


EVIL_VALUES = [10 ** 12, -1, 0, -5, 2 ** 63, -2 ** 63, 2 ** 31, 10 ** 30, 1e308, -1e308,
               2.5, "abc", "", None, True, False, [], {}, [1, -2], [10 ** 12, 10 ** 12],
               [None], {"class_name": "Dense"}, "\u0000", "../../etc/passwd",
               "os.system", [[[[[[[[[[]]]]]]]]]], "x" * 1000]


def _targeted_json_edit(meta, rng):
    """An edit chosen from the known weak spots of a model config."""
    layers = meta["model"]["config"]["layers"]
    dense = [l for l in layers if l["class_name"] == "Dense"]
    kind = int(rng.integers(0, 18))
    desc = ""
    if kind == 0:
        dense[0]["config"]["units"] = 10 ** 12; desc = "units=10**12"
    elif kind == 1:
        dense[-1]["config"]["units"] = 10 ** 6; desc = "last units=10**6"
    elif kind == 2:
        meta["model"]["config"]["input_shape"] = [-6]; desc = "input_shape=[-6]"
    elif kind == 3:
        meta["model"]["config"]["input_shape"] = [10 ** 12]; desc = "input_shape=[10**12]"
    elif kind == 4:
        meta["model"]["config"]["input_shape"] = [100000, 100000]; desc = "input_shape 1e10"
    elif kind == 5:
        dense[0]["config"]["units"] = "8"; desc = "units='8'"
    elif kind == 6:
        dense[0]["config"]["activation"] = 123; desc = "activation=123"
    elif kind == 7:
        for l in layers:
            if l["class_name"] == "Dropout":
                l["config"]["rate"] = 5.0
        desc = "dropout rate=5"
    elif kind == 8:
        dense[0]["class_name"] = "Conv7D"; desc = "unknown layer"
    elif kind == 9:
        dense[0]["class_name"] = "builtins.eval"; desc = "class builtins.eval"
    elif kind == 10:
        meta["model"]["config"]["layers"] = layers * 200; desc = "layers x200"
    elif kind == 11:
        meta["weights"] = meta["weights"][:1]; desc = "manifest truncated"
    elif kind == 12:
        meta["weights"][0]["arrays"][0]["key"] = "metadata"; desc = "manifest key=metadata"
    elif kind == 13:
        if meta.get("optimizer_state"):
            meta["optimizer_state"]["iterations"] = -3
        desc = "iterations=-3"
    elif kind == 14:
        if meta.get("compile"):
            meta["compile"]["optimizer"]["config"]["learning_rate"] = "fast"
        desc = "learning_rate='fast'"
    elif kind == 15:
        if meta.get("compile"):
            meta["compile"]["loss"] = {"class_name": "os.system", "config": {}}
        desc = "loss class os.system"
    elif kind == 16:
        for s in meta.get("layer_state", []):
            s["step"] = -1
        desc = "dropout step=-1"
    else:
        dense[0]["config"]["kernel_initializer"] = {"class_name": "RandomNormal",
                                                    "config": {"stddev": 10 ** 400 // 10 ** 390}}
        desc = "initializer huge stddev"
    return desc


def mutate(base, dst, rng, case_no):
    """Write a mutated copy of ``base`` to ``dst``; returns a description."""
    raw = open(base, "rb").read()
    kind = case_no % 12
    data = bytearray(raw)
    if kind in (0, 1, 2):          # bit flips: anywhere / first 256 bytes / last 400
        n = int(rng.integers(1, 9))
        lo, hi = [(0, len(data)), (0, min(256, len(data))),
                  (max(0, len(data) - 400), len(data))][kind]
        offs = rng.integers(lo, hi, n)
        for o in offs:
            data[int(o)] ^= 1 << int(rng.integers(0, 8))
        open(dst, "wb").write(bytes(data))
        return f"bitflip x{n} at {sorted(int(o) for o in offs)}"
    if kind == 3:                  # truncation
        cut = int(rng.integers(0, len(data)))
        open(dst, "wb").write(bytes(data[:cut]))
        return f"truncate to {cut} of {len(data)} bytes"
    if kind == 4:                  # garbage over a range
        start = int(rng.integers(0, len(data)))
        length = int(rng.integers(1, 64))
        data[start:start + length] = rng.integers(0, 256, min(length, len(data) - start),
                                                  dtype=np.uint8).tobytes()
        open(dst, "wb").write(bytes(data))
        return f"garbage at {start}+{length}"
    members = _members(base)
    names = [n for n, _ in members]
    if kind == 5:                  # swap two members' contents
        arrays = [i for i, n in enumerate(names) if n not in ("metadata.npy",)]
        i, j = rng.choice(arrays, 2, replace=False)
        members[i], members[j] = (members[i][0], members[j][1]), (members[j][0], members[i][1])
        _write(dst, members)
        return f"swap {names[i]} <-> {names[j]}"
    if kind in (8, 9) and "model" in _read_meta(members):   # a targeted JSON edit
        meta = _read_meta(members)
        desc = _targeted_json_edit(meta, rng)
        members = [(n, _meta_npy(meta) if n == "metadata.npy" else d) for n, d in members]
        _write(dst, members)
        return "json " + desc
    if kind in (6, 7, 8, 9):       # a random JSON value replaced
        meta = _read_meta(members)
        slots = _json_slots(meta)
        obj, key, path = slots[int(rng.integers(0, len(slots)))]
        value = EVIL_VALUES[int(rng.integers(0, len(EVIL_VALUES)))]
        obj[key] = value
        members = [(n, _meta_npy(meta) if n == "metadata.npy" else d) for n, d in members]
        _write(dst, members)
        return f"json {'/'.join(map(str, path))} = {str(value)[:40]!r}"
    # kind 10, 11: member-level damage
    sub = int(rng.integers(0, 9))
    if sub == 0:
        drop = names[int(rng.integers(0, len(names)))]
        _write(dst, [(n, d) for n, d in members if n != drop])
        return f"drop member {drop}"
    if sub == 1:
        _write(dst, members + [("evil.npy", _npy(np.array([{"a": 1}], dtype=object)))])
        return "extra pickled member"
    if sub == 2:
        victim = names[int(rng.integers(0, len(names)))]
        _write(dst, [(n, _npy(np.array([None, 1], dtype=object)) if n == victim else d)
                     for n, d in members])
        return f"pickled {victim}"
    if sub == 3:                   # header claims a huge array, data stays small
        victim = [n for n in names if n.startswith("w")][0]
        hdr = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            hdr, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 9,)})
        d = dict(members)[victim]
        arr = np.lib.format.read_array(io.BytesIO(d))
        _write(dst, [(n, hdr.getvalue() + arr.tobytes() if n == victim else dd)
                     for n, dd in members])
        return f"{victim} header claims (10**9,) float64"
    if sub == 4:                   # a deflated member of 64 MB of zeros (bomb-like)
        victim = [n for n in names if n.startswith("w")][0]
        _write(dst, [(n, _npy(np.zeros(8 * 2 ** 20)) if n == victim else d)
                     for n, d in members], zipfile.ZIP_DEFLATED)
        return f"{victim} replaced by 64 MB of deflated zeros"
    if sub == 5:                   # metadata not JSON / deeply nested JSON
        text = "[" * 100000 + "]" * 100000 if rng.integers(0, 2) else "\xff\xfe not json"
        _write(dst, [(n, _meta_npy(None, text) if n == "metadata.npy" else d)
                     for n, d in members])
        return "metadata: deep nesting or not JSON"
    if sub == 6:                   # duplicate member names
        _write(dst, members + members[:1])
        return f"duplicate member {names[0]}"
    if sub == 7:                   # a weight of the right dtype but empty / reshaped
        victim = [n for n in names if n.startswith("w")][0]
        arr = np.lib.format.read_array(io.BytesIO(dict(members)[victim]))
        new = arr.reshape(-1)[:0] if rng.integers(0, 2) else arr.reshape(-1)
        _write(dst, [(n, _npy(new) if n == victim else d) for n, d in members])
        return f"{victim} reshaped to {new.shape}"
    victim = names[int(rng.integers(0, len(names)))]
    _write(dst, [(n, _npy(np.zeros((2, 3), np.complex64)) if n == victim else d)
                 for n, d in members])
    return f"{victim} complex dtype"


def _usable(model):
    shape = model.input_shape
    if shape is None or any(d is None for d in shape[1:]):
        return "loaded (input shape unknown, not predicted)"
    x = np.random.default_rng(0).random((4,) + tuple(shape[1:])).astype(np.float32)
    p = model.predict(x, verbose=0)
    assert p.shape == (4, model.output_units), p.shape
    if not np.isfinite(p).all():
        raise AssertionError("loaded model predicts non-finite values")
    return "loaded"


def child_main(out_dir, seed, n_cases):
    import resource
    if not os.environ.get("NNCORE_UNDER_ASAN"):   # ASan's shadow memory needs TBs of VA
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    def on_alarm(signum, frame):
        raise CaseTimeout()
    signal.signal(signal.SIGALRM, on_alarm)

    import nncore as keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dropout(0.2),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng0 = np.random.default_rng(0)
    model.fit(rng0.random((32, 6)), rng0.integers(0, 3, 32), epochs=1, verbose=0)
    base = os.path.join(out_dir, "base.npz")
    wbase = os.path.join(out_dir, "base.weights.npz")
    model.save(base)
    model.save_weights(wbase)
    fresh = lambda: keras.Sequential([keras.Input(shape=(6,)),  # noqa: E731
                                      keras.layers.Dense(5, activation="relu"),
                                      keras.layers.Dropout(0.2),
                                      keras.layers.Dense(3, activation="softmax")])

    outcomes, failures = {}, []
    for case_no in range(n_cases):
        rng = np.random.default_rng([seed, case_no])
        weights_case = case_no % 6 == 5
        dst = os.path.join(out_dir, f"case{case_no}" + (".weights.npz" if weights_case else ".npz"))
        desc = mutate(wbase if weights_case else base, dst, rng, case_no)
        label = f"#{case_no} {'load_weights' if weights_case else 'load_model'}: {desc}"
        signal.alarm(CASE_SECONDS)
        try:
            if weights_case:
                m = fresh()
                before = m.get_weights()
                try:
                    m.load_weights(dst)
                except ALLOWED:
                    # a refused file must leave the weights untouched
                    for a, b in zip(before, m.get_weights()):
                        if not np.array_equal(a, b):
                            raise AssertionError("refused load_weights changed the weights")
                    raise
            else:
                m = keras.models.load_model(dst)
            outcome = _usable(m)
        except CaseTimeout:
            outcome = "HANG"
            failures.append(f"{label}: no result after {CASE_SECONDS} s")
        except ALLOWED as e:
            outcome = type(e).__name__
        except BaseException as e:  # noqa: BLE001 - everything else is a finding
            outcome = "BAD " + type(e).__name__
            failures.append(f"{label}: {type(e).__name__}: {str(e)[:300]}\n"
                            + "".join(traceback.format_exc().splitlines(True)[-6:]))
        finally:
            signal.alarm(0)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        try:
            os.unlink(dst)
        except OSError:
            pass
    import resource as r
    print(json.dumps({"outcomes": outcomes, "failures": failures,
                      "max_rss_mb": r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024}))


# ================================================================= the test
def _run_child(tmp_path, seed, n_cases):
    from conftest import child_env     # the same nncore as this test run
    env = child_env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                            str(tmp_path), str(seed), str(n_cases)],
                           capture_output=True, text=True, timeout=TOTAL_SECONDS, env=env,
                           cwd=REPO)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the fuzz loop did not finish in {TOTAL_SECONDS} s (a hang?):\n"
                    f"{(e.stdout or '')[-2000:]}")
    assert r.returncode == 0, (
        f"the fuzz child died (exit code {r.returncode}"
        f"{', signal %d' % -r.returncode if r.returncode < 0 else ''}):\n"
        f"{r.stdout[-3000:]}\n{r.stderr[-5000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_fuzz_load_model_and_load_weights(tmp_path):
    report = _run_child(tmp_path, seed=20240611, n_cases=N_CASES)
    outcomes, failures = report["outcomes"], report["failures"]
    print("fuzz outcomes:", outcomes, "max RSS MB:", round(report["max_rss_mb"]))
    assert sum(outcomes.values()) == N_CASES
    assert not failures, (f"{len(failures)} of {N_CASES} damaged files were not handled "
                          "cleanly:\n" + "\n".join(failures[:25]))
    # the loop must have exercised both outcomes
    assert outcomes.get("loaded", 0) > 0
    assert sum(v for k, v in outcomes.items() if k != "loaded") > N_CASES // 2


def _saved_with_nan(tmp_path, weights_only):
    """A file whose weights hold NaN/inf: written by hand (valid archive, valid
    CRCs), as a diverged run's checkpoint or a corrupted copy would be."""
    import nncore as keras
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(2)])
    path = os.path.join(str(tmp_path), "nan.weights.npz" if weights_only else "nan.npz")
    (model.save_weights if weights_only else model.save)(path)
    members = _members(path)
    bad = []
    for n, d in members:
        if n == "w2.npy":         # the output layer's kernel
            arr = np.lib.format.read_array(io.BytesIO(d))
            arr.reshape(-1)[0] = np.nan
            arr.reshape(-1)[-1] = np.inf
            d = _npy(arr)
        bad.append((n, d))
    _write(path, bad)
    return path, model


@pytest.mark.parametrize("weights_only", [False, True], ids=["load_model", "load_weights"])
def test_load_refuses_non_finite_weights(tmp_path, weights_only):
    """set_weights refuses NaN/inf; loading a file must too (today both loaders
    accept it and the loaded model predicts NaN)."""
    import nncore as keras
    path, model = _saved_with_nan(tmp_path, weights_only)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"(?i)(nan|inf|finite).*|.*(nan|inf|finite)") as info:
        if weights_only:
            model.load_weights(path)
        else:
            keras.models.load_model(path)
    assert "dense" in str(info.value) or "w2" in str(info.value), str(info.value)
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: python tests/test_fuzz_files.py --child OUT_DIR SEED N_CASES")
