"""The file system around save: symlinks, permissions, failed writes, signals
during I/O, truncated and lying archives, crafted optimizer state.

Whatever happens, the file at the path is the old one or the new one --
complete -- and the error (or KeyboardInterrupt) says what happened.  Cases
that could crash or hang the interpreter run in a child process.
"""
import glob
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import nncore as keras
from nncore.saving import FormatError
from nncore.saving import atomic

L = keras.layers
IS_POSIX = os.name == "posix"
HAS_H5PY = True
try:
    import h5py  # noqa: F401
except ImportError:
    HAS_H5PY = False
SUFFIXES = [".npz"] + ([".keras"] if HAS_H5PY else [])


def _model(units=4, seed=0):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input(shape=(3,)), L.Dense(units, activation="relu"),
                          L.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


X = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")


def _pred(path):
    return keras.models.load_model(path).predict(X, verbose=0)


def _leftovers(folder):
    return [p for p in os.listdir(folder) if p.endswith(".tmp")]


def _run_child(code, timeout=120, **env):
    from conftest import child_env
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env=child_env(PYTHONUNBUFFERED="1", **env), capture_output=True,
                          text=True, timeout=timeout)


# --------------------------------------------------------------- symlinks
@pytest.mark.skipif(not IS_POSIX, reason="symlinks need POSIX")
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_writes_through_symlink(tmp_path, suffix):
    real = tmp_path / "store" / f"real{suffix}"
    real.parent.mkdir()
    link = tmp_path / f"link{suffix}"
    _model(seed=1).save(real)
    os.symlink(real, link)
    new = _model(seed=2)
    new.save(link)
    assert os.path.islink(link) and os.readlink(link) == str(real)
    assert np.array_equal(_pred(real), new.predict(X, verbose=0))
    assert _leftovers(tmp_path) == [] and _leftovers(real.parent) == []


@pytest.mark.skipif(not IS_POSIX, reason="symlinks need POSIX")
def test_save_weights_through_relative_symlink_chain(tmp_path):
    (tmp_path / "d").mkdir()
    target = tmp_path / "d" / "w.weights.npz"
    os.symlink("d/w.weights.npz", tmp_path / "hop.weights.npz")      # relative
    os.symlink(tmp_path / "hop.weights.npz", tmp_path / "w.weights.npz")
    m = _model(seed=3)
    m.save_weights(tmp_path / "w.weights.npz")                          # dangling chain
    assert target.is_file() and os.path.islink(tmp_path / "w.weights.npz")
    assert os.path.islink(tmp_path / "hop.weights.npz")
    n = _model(seed=4)
    n.load_weights(tmp_path / "w.weights.npz")
    assert np.array_equal(n.predict(X, verbose=0), m.predict(X, verbose=0))


@pytest.mark.skipif(not IS_POSIX, reason="symlinks need POSIX")
def test_symlink_loop_is_a_clear_error(tmp_path):
    os.symlink(tmp_path / "b.npz", tmp_path / "a.npz")
    os.symlink(tmp_path / "a.npz", tmp_path / "b.npz")
    with pytest.raises(OSError, match="symbolic links"):
        _model().save(tmp_path / "a.npz")
    assert os.path.islink(tmp_path / "a.npz") and os.path.islink(tmp_path / "b.npz")


@pytest.mark.skipif(not IS_POSIX, reason="symlinks need POSIX")
def test_overwrite_false_sees_through_links(tmp_path):
    _model().save(tmp_path / "real.npz")
    os.symlink(tmp_path / "real.npz", tmp_path / "link.npz")
    with pytest.raises(FileExistsError):
        _model().save(tmp_path / "link.npz", overwrite=False)


@pytest.mark.skipif(not IS_POSIX, reason="FIFOs need POSIX")
def test_link_to_special_file_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "fifo", tmp_path / "m.npz")
    with pytest.raises(OSError, match="not a regular file"):
        _model().save(tmp_path / "m.npz")
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)
    assert _leftovers(tmp_path) == []


def test_directory_target_refused(tmp_path):
    (tmp_path / "m.npz").mkdir()
    with pytest.raises(IsADirectoryError):
        _model().save(tmp_path / "m.npz")


# --------------------------------------------------------------- permissions
@pytest.mark.skipif(not IS_POSIX, reason="POSIX file modes")
@pytest.mark.parametrize("suffix,mode", [(".npz", 0o600), (".npz", 0o640), (".npz", 0o444)]
                         + ([(".keras", 0o600), (".weights.h5", 0o604)] if HAS_H5PY else []))
def test_mode_of_existing_file_kept(tmp_path, suffix, mode):
    path = tmp_path / f"m{suffix}"
    save = (lambda m: m.save_weights(path)) if "weights" in suffix else (lambda m: m.save(path))
    save(_model(seed=1))
    os.chmod(path, mode)
    save(_model(seed=2))
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


@pytest.mark.skipif(not IS_POSIX, reason="POSIX umask")
@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_gets_umask_default(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        _model().save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == expected


@pytest.mark.skipif(not IS_POSIX, reason="POSIX file modes")
def test_mode_through_symlink_is_the_targets(tmp_path):
    _model().save(tmp_path / "real.npz")
    os.chmod(tmp_path / "real.npz", 0o600)
    os.symlink(tmp_path / "real.npz", tmp_path / "link.npz")
    _model(seed=5).save(tmp_path / "link.npz")
    assert stat.S_IMODE(os.stat(tmp_path / "real.npz").st_mode) == 0o600


@pytest.mark.skipif(not IS_POSIX, reason="POSIX owners")
def test_owner_kept_where_allowed(tmp_path):
    path = tmp_path / "m.npz"
    _model().save(path)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)            # root: the owner is put back
        expected = (65534, 65534)
    else:                                       # others: a rewrite is ours, as always
        expected = (os.geteuid(), os.stat(path).st_gid)
    _model(seed=7).save(path)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == expected


def test_unwritable_folder_clear_error_old_file_intact(tmp_path, monkeypatch):
    """A folder we may not create files in (simulated: root ignores modes)."""
    _model(seed=1).save(tmp_path / "m.npz")
    before = _pred(tmp_path / "m.npz")
    real_open = os.open

    def deny(path, flags, *a, **k):
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *a, **k)
    monkeypatch.setattr(atomic.os, "open", deny)
    with pytest.raises(PermissionError, match="cannot save into folder"):
        _model(seed=2).save(tmp_path / "m.npz")
    monkeypatch.undo()
    assert np.array_equal(_pred(tmp_path / "m.npz"), before)


# --------------------------------------------------------------- failed writes
def _fail_after_partial_write(monkeypatch, module, name):
    real = getattr(module, name)

    def partial(f, *a, **k):
        f.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(module, name, partial)
    return real


@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_failed_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch, stage):
    from nncore.saving import format as fmt
    _model(seed=1).save(tmp_path / "m.npz")
    before = _pred(tmp_path / "m.npz")
    if stage == "write":
        _fail_after_partial_write(monkeypatch, fmt, "_write_arrays")
    elif stage == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(
            OSError(5, "Input/output error")))
    else:
        monkeypatch.setattr(atomic.os, "replace", lambda a, b: (_ for _ in ()).throw(
            OSError(28, "No space left on device")))
    with pytest.raises(OSError):
        _model(seed=2).save(tmp_path / "m.npz")
    monkeypatch.undo()
    assert np.array_equal(_pred(tmp_path / "m.npz"), before)
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(not HAS_H5PY, reason="h5py (the 'keras' extra) is not installed")
def test_failed_keras_write_keeps_old_file(tmp_path, monkeypatch):
    from nncore.saving import keras_files
    _model(seed=1).save(tmp_path / "m.keras")
    before = _pred(tmp_path / "m.keras")
    monkeypatch.setattr(keras_files, "dumps", lambda obj: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space"):
        _model(seed=2).save(tmp_path / "m.keras")
    monkeypatch.undo()
    assert np.array_equal(_pred(tmp_path / "m.keras"), before)
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------- signals during I/O
SIGINT_DURING_WRITE = """
import os, signal, glob, numpy as np, nncore as keras
from nncore.saving import format as fmt, atomic
L = keras.layers
def model(seed):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input(shape=(3,)), L.Dense(64), L.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    return m
path = {path!r}
model(1).save(path)
real = fmt._write_arrays
def interrupted(f, arrays):           # Ctrl-C arrives in the middle of the write
    f.write(b"")
    os.kill(os.getpid(), signal.SIGINT)
    real(f, arrays)
fmt._write_arrays = interrupted
if path.endswith(".keras"):
    import zipfile
    real_writestr = zipfile.ZipFile.writestr
    def writestr(self, *a, **k):
        if a[0] == "model.weights.h5":
            os.kill(os.getpid(), signal.SIGINT)
        return real_writestr(self, *a, **k)
    zipfile.ZipFile.writestr = writestr
new = model(2)
try:
    new.save(path)
    print("no interrupt")
except KeyboardInterrupt as e:
    import traceback
    tb = traceback.extract_tb(e.__traceback__)
    print("interrupt from", tb[-1].name)
x = np.ones((2, 3), np.float32)
loaded = keras.models.load_model(path)
print("new file" if np.array_equal(loaded.predict(x, verbose=0), new.predict(x, verbose=0))
      else "old file")
print("leftovers", len(glob.glob(os.path.dirname(path) + "/.*.tmp")))
"""


@pytest.mark.skipif(not IS_POSIX, reason="signals need POSIX")
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_sigint_during_save_surfaces_cleanly_after_write(tmp_path, suffix):
    out = _run_child(SIGINT_DURING_WRITE.format(path=str(tmp_path / f"m{suffix}")))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # the interrupt is raised once, by the deferral on the way out, not from
    # inside numpy/zipfile/h5py; the file is complete and no temp file is left
    assert lines[0] in ("interrupt from raise_if_pending", "interrupt from __exit__"), lines
    assert lines[1] == "new file" and lines[2] == "leftovers 0", lines


@pytest.mark.skipif(not IS_POSIX, reason="signals need POSIX")
def test_sigint_at_random_moments_never_damages_file(tmp_path):
    """Ctrl-C at random instants while saving over and over: every time, the
    file loads and is either the previous or the new model."""
    code = f"""
    import os, random, signal, threading, time, glob, numpy as np, nncore as keras
    L = keras.layers
    path = {str(tmp_path / "m.npz")!r}
    x = np.ones((2, 20), np.float32)
    models = []
    for s in range(2):
        keras.utils.set_random_seed(s)
        m = keras.Sequential([keras.Input(shape=(20,)), L.Dense(300), L.Dense(300), L.Dense(2)])
        m.compile(optimizer="adam", loss="mse")
        models.append(m)
    preds = [m.predict(x, verbose=0) for m in models]
    models[0].save(path)
    rng = random.Random(0)
    interrupts = bad = 0
    fired = []
    def fire():
        os.kill(os.getpid(), signal.SIGINT)
        fired.append(1)
    for i in range(25):
        t = threading.Timer(rng.uniform(0, 0.01), fire)
        try:
            t.start()
            models[i % 2].save(path)
            while len(fired) <= i:    # a late signal lands here, outside save
                time.sleep(0.0005)
            time.sleep(0.005)
        except KeyboardInterrupt:
            interrupts += 1
        t.join()
        got = keras.models.load_model(path).predict(x, verbose=0)
        if not any(np.array_equal(got, p) for p in preds):
            bad += 1
    print(interrupts, bad, len(glob.glob(os.path.dirname(path) + "/.*.tmp")))
    """
    out = _run_child(code, timeout=300)
    assert out.returncode == 0, out.stderr
    interrupts, bad, leftovers = map(int, out.stdout.split())
    assert interrupts > 0 and bad == 0 and leftovers == 0, out.stdout


@pytest.mark.skipif(not IS_POSIX, reason="signals need POSIX")
def test_sigkill_during_save_leaves_previous_file(tmp_path):
    path = tmp_path / "m.npz"
    code = f"""
    import numpy as np, nncore as keras
    L = keras.layers
    m = keras.Sequential([keras.Input(shape=(50,)), L.Dense(400), L.Dense(400), L.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    m.save({str(path)!r})
    print("saved", flush=True)
    while True:
        m.save({str(path)!r})
    """
    from conftest import child_env
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            env=child_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "saved"
    time.sleep(0.3)
    proc.kill()
    proc.wait(timeout=30)
    m = keras.models.load_model(path)       # complete, loadable
    assert m.layers[0].kernel.shape == (50, 400)


# --------------------------------------------------------------- lying / damaged .npz
def _saved(tmp_path, name="m.npz"):
    m = _model()
    m.fit(X, np.arange(8) % 2, epochs=1, verbose=0)
    m.save(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.9, 0.999])
def test_truncated_npz_refused(tmp_path, frac):
    path = _saved(tmp_path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:int(len(data) * frac)])
    with pytest.raises(FormatError):
        keras.models.load_model(path)


def _lying_npz(path, units_in=15_000, units=20_000, compression=zipfile.ZIP_STORED):
    """A ~1 KB nncore-looking .npz whose weight members declare a 1.2 GB
    Dense layer (headers and central directory agree on the lie)."""
    meta = {"format": "nncore", "format_version": 1, "kind": "model",
            "model": {"class_name": "Sequential", "config": {
                "name": "s", "trainable": True, "input_shape": [units_in],
                "layers": [{"class_name": "Dense", "config": {"units": units, "name": "d"}}]}},
            "weights": [{"layer": "d", "class_name": "Dense", "arrays": [
                {"name": "kernel", "key": "w0"}, {"name": "bias", "key": "w1"}]}],
            "compile": None, "optimizer_state": None, "layer_state": []}
    import io
    members = {}
    for key, arr in (("format_version", np.array(1, np.int64)),
                     ("metadata", np.frombuffer(json.dumps(meta).encode(), np.uint8))):
        b = io.BytesIO()
        np.lib.format.write_array(b, arr)
        members[key + ".npy"] = b.getvalue()
    declared = {}
    for key, shape in (("w0", (units_in, units)), ("w1", (units,))):
        b = io.BytesIO()
        np.lib.format.write_array_header_1_0(b, {"descr": "<f4", "fortran_order": False,
                                                 "shape": shape})
        members[key + ".npy"] = b.getvalue() + b"\0" * 64
        declared[key + ".npy"] = len(b.getvalue()) + 4 * int(np.prod(shape))
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = bytearray(open(path, "rb").read())
    for name, size in declared.items():
        pos = 0
        while True:
            pos = raw.find(b"PK\x01\x02", pos)
            n = int.from_bytes(raw[pos + 28:pos + 30], "little")
            if raw[pos + 46:pos + 46 + n] == name.encode():
                break
            pos += 4
        raw[pos + 24:pos + 28] = min(size, 0xFFFFFF00).to_bytes(4, "little")
        if compression == zipfile.ZIP_STORED:
            raw[pos + 20:pos + 24] = min(size, 0xFFFFFF00).to_bytes(4, "little")
    open(path, "wb").write(bytes(raw))
    return path


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED],
                         ids=["stored", "deflated"])
def test_lying_npz_refused_without_memory_jump(tmp_path, compression):
    path = _lying_npz(tmp_path / "lie.npz", compression=compression)
    assert os.path.getsize(path) < 4096
    code = f"""
    import resource, nncore as keras
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        keras.models.load_model({str(path)!r})
        print("loaded")
    except ValueError as e:
        print("refused:", str(e).replace(chr(10), " ")[:300])
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """
    out = _run_child(code)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr
    assert lines[0].startswith("refused:"), lines
    assert "past the end" in lines[0] or "deflate" in lines[0], lines[0]
    assert int(lines[1]) < 50, f"peak RSS grew by {lines[1]} MB"


def test_npz_member_path_traversal_refused(tmp_path):
    path = _saved(tmp_path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("../escape.npy", b"x")
    with pytest.raises(FormatError, match="escape"):
        keras.models.load_model(path)


def test_npz_compressed_bomb_member_refused(tmp_path):
    path = _saved(tmp_path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(tmp_path / "b.npz", "w", zipfile.ZIP_LZMA) as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    with pytest.raises(FormatError, match="compression method"):
        keras.models.load_model(tmp_path / "b.npz")


# --------------------------------------------------------------- crafted optimizer state
CRAFTED_OPT = """
import json, warnings, numpy as np, nncore as keras
L = keras.layers
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input(shape=(4,)), L.Dense(3, activation="relu"),
                      L.Dense(2, activation="softmax")])
m.compile(optimizer={opt!r}, loss="sparse_categorical_crossentropy")
x = np.random.default_rng(0).random((16, 4)).astype("float32"); y = np.arange(16) % 2
m.fit(x, y, epochs=1, verbose=0)
m.save("a.npz")
d = dict(np.load("a.npz"))
meta = json.loads(d["metadata"].tobytes())
v = meta["optimizer_state"]["variables"]
mode = {mode!r}
if mode == "reverse":
    meta["optimizer_state"]["variables"] = v[::-1]
elif mode == "rotate":
    meta["optimizer_state"]["variables"] = v[1:] + v[:1]
elif mode == "subset":
    meta["optimizer_state"]["variables"] = v[:2]
elif mode == "swap_keys":
    a, b = v[0]["slots"], v[1]["slots"]
    v[0]["slots"], v[1]["slots"] = b, a
elif mode == "duplicate":
    meta["optimizer_state"]["variables"] = v[:1] + v[:1] + v[2:]
d["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
np.savez("b.npz", **d)
def after_fit(path):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        k = keras.models.load_model(path)
    k.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    return k.get_weights(), [str(i.message) for i in w]
ref, _ = after_fit("a.npz")
try:
    got, warned = after_fit("b.npz")
    same = all(np.array_equal(p, q) for p, q in zip(ref, got))
    print("loaded", "same" if same else "different", "warned" if warned else "quiet")
except ValueError as e:
    print("refused", type(e).__name__)
"""


@pytest.mark.parametrize("mode,opt,expected", [
    ("reverse", "adam", "loaded same quiet"),
    ("rotate", "rmsprop", "loaded same quiet"),
    ("subset", "adam", "loaded different warned"),
    ("swap_keys", "adam", "refused FormatError"),
    ("duplicate", "adagrad", "refused FormatError"),
])
def test_crafted_optimizer_order_no_crash_no_hang(tmp_path, mode, opt, expected):
    """Reordered optimizer-state entries used to build the optimizer in the
    file's order, pairing weights with other weights' slots inside the nogil
    update (segfault or hang).  Now they are placed by the weight they name."""
    out = _run_child(CRAFTED_OPT.format(opt=opt, mode=mode), timeout=120)  # cwd: tmp_path
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip() == expected


@pytest.fixture(autouse=True)
def _child_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
