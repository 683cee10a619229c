"""Reliability round 3 (issue 23), chapter 9: sequences, Embedding and the
recurrent layers, and ``imdb.npz`` files, used as a hostile user would.

Every case must end *clean* (an exception naming the problem, the model
still usable) or *correct* (the right numbers) -- never a crash, a hang or
silent garbage.  As in test_hostile_round3.py, one child process under a
4 GiB address limit runs a whole group; a case that kills its child is
reported as crashed and the rest of the group goes on in a fresh child.

The hostile pickles prove that they are live: after nncore refused a file,
the child unpickles the same bytes itself (only here, in the test) and the
payload creates its marker file -- so "nothing was executed" is not true
merely because the payload was broken.
"""
import os
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_hostile import IS_POSIX  # noqa: E402
from test_hostile_round3 import _run_group  # noqa: E402

SMALL_IMDB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "imdb",
                          "imdb_small.npz")

HELPERS = textwrap.dedent('''
    import io, json, os, pickle, tempfile, zipfile, traceback
    T = tempfile.mkdtemp()
    SMALL = %r
    ps = keras.utils.pad_sequences
    UNDER_ASAN = bool(os.environ.get("NNCORE_UNDER_ASAN"))

    def seq_model(cell="LSTM", steps=6, vocab=10, mask_zero=False, units=4):
        m = keras.Sequential([L.Input((steps,)), L.Embedding(vocab, 3, mask_zero=mask_zero),
                              getattr(L, cell)(units), L.Dense(2, activation="softmax")])
        m.compile("rmsprop", "sparse_categorical_crossentropy")
        return m

    xs = rng.integers(1, 10, (8, 6))
    ys = rng.integers(0, 2, 8)

    def still_usable(m, x=None, y=None):
        x = xs if x is None else x
        y = ys if y is None else y
        m.fit(x, y, epochs=1, verbose=0)
        assert np.isfinite(m.predict(x, verbose=0)).all()
        assert all(np.isfinite(w).all() for w in m.get_weights())

    def same_weights(a, b):
        return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))

    # ---- imdb.npz files
    def npy(pickle_bytes, shape=(1,), descr="|O"):
        fp = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            fp, {"descr": descr, "fortran_order": False, "shape": shape})
        fp.write(pickle_bytes)
        return fp.getvalue()

    def npy_plain(arr):
        fp = io.BytesIO(); np.save(fp, arr); return fp.getvalue()

    def npz(members, name="bad.npz"):
        """imdb_small.npz with some members replaced (bytes) or dropped (None)."""
        path = os.path.join(T, name)
        good = zipfile.ZipFile(SMALL)
        with zipfile.ZipFile(path, "w") as z:
            for n in good.namelist():
                data = members.get(n, good.read(n))
                if data is not None:
                    z.writestr(n, data)
        return path

    def imdb_refused(path, match, exc=ValueError):
        from nncore.datasets import imdb
        try:
            imdb.load_data(path=path)
        except exc as e:
            assert re.search(match, str(e), re.I), f"message {e!s} lacks {match!r}"
            return str(e)
        raise AssertionError("hostile imdb file was loaded")

    MARKER = os.path.join(T, "pwned")

    def payload_was_not_run_but_is_live(stream):
        """nncore refused it and the marker is absent; pickle itself (here,
        in the test only) runs the payload and creates the marker."""
        assert not os.path.exists(MARKER), "the payload ran inside nncore"
        try:
            pickle.loads(stream)      # noqa: S301 -- proving the payload is real
        except Exception:
            pass
        assert os.path.exists(MARKER), "the payload is not live: the test proves nothing"
        os.remove(MARKER)

    class TouchOsSystem:
        def __reduce__(self):
            return (os.system, (f"touch {MARKER}",))

    class TouchExec:
        def __reduce__(self):
            return (exec, (f"open({MARKER!r}, 'w').close()",))

    # ---- recurrent .keras files
    def saved_rnn(cell):
        m = seq_model(cell)
        m.fit(xs, ys, epochs=1, verbose=0)
        p = os.path.join(T, cell + ".keras"); m.save(p)
        return m, p

    def rewrite(src, dst, members):
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
            for name in zin.namelist():
                data = members.get(name, zin.read(name))
                if data is not None:
                    zout.writestr(name, data)

    def edit_h5(path, fn):
        import h5py
        h5 = os.path.join(T, "w.h5")
        open(h5, "wb").write(zipfile.ZipFile(path).read("model.weights.h5"))
        with h5py.File(h5, "r+") as f:
            fn(f)
        out = path + ".badw.keras"
        rewrite(path, out, {"model.weights.h5": open(h5, "rb").read()})
        return out

    def replace_ds(f, name, arr):
        del f[name]
        f[name] = arr

    def edit_config(path, fn):
        cfg = json.loads(zipfile.ZipFile(path).read("config.json"))
        fn(cfg)
        out = path + ".bad.keras"
        rewrite(path, out, {"config.json": json.dumps(cfg).encode()})
        return out

    def layer_cfg(cfg, cls):
        return [l for l in cfg["config"]["layers"] if l["class_name"] == cls][0]["config"]

    def load_refused(path, match=""):
        try:
            keras.models.load_model(path)
        except (ValueError, TypeError, OSError, KeyError) as e:
            assert re.search(match, str(e), re.I), f"message {e!s} lacks {match!r}"
            return str(e)
        raise AssertionError("hostile file was loaded")
''' % SMALL_IMDB)

CASES = {}


def case(group, name, code):
    CASES[name] = (group, textwrap.dedent(code))


# ------------------------------------------------------------ pad_sequences
case("seq", "pad_sequences_nested_ragged_names_the_sequence", """
    refused(lambda: ps([[1, 2], [3, [4, 5]]]), ValueError, "sequence 1")
""")
case("seq", "pad_sequences_strings_and_nan_name_the_sequence", """
    refused(lambda: ps([[1, 2], ["a"]]), ValueError, "sequence 1 .*int32")
    refused(lambda: ps([[1.0], [np.nan]]), ValueError, "sequence 1 .*NaN")
    assert ps([[1.5], [np.nan]], dtype="float32").shape == (2, 1)    # floats may be NaN
""")
case("seq", "pad_sequences_huge_maxlen_is_a_clear_memory_error", """
    refused(lambda: ps([[1, 2], [3]], maxlen=10 ** 12), MemoryError, "maxlen=1000000000000")
    assert ps([[1, 2], [3]], maxlen=3).tolist() == [[0, 1, 2], [0, 0, 3]]
""")
case("seq", "pad_sequences_value_too_big_for_dtype", """
    refused(lambda: ps([[1], [2 ** 40]]), OverflowError, "sequence 1")
    assert ps([[1], [2 ** 40]], dtype="int64")[1, 0] == 2 ** 40
""")
case("seq", "pad_sequences_zero_maxlen_and_empty_sequences", """
    # Keras: maxlen=0 and all-empty input give (n, 0) arrays, not errors
    assert ps([[1, 2], [3]], maxlen=0).shape == (2, 0)
    assert ps([[], []]).shape == (2, 0)
    assert ps([]).shape == (0, 0)
""")

# ------------------------------------------------------------ ragged input to fit
case("seq", "fit_on_ragged_list_points_to_pad_sequences", """
    m = seq_model(); w = m.get_weights()
    refused(lambda: m.fit([[1, 2, 3, 4, 5, 6], [1, 2]], [0, 1], verbose=0), ValueError,
            "different lengths.*pad_sequences")
    assert same_weights(w, m.get_weights())
    still_usable(m)
""")
case("seq", "fit_on_object_array_of_reviews_points_to_pad_sequences", """
    reviews = np.empty(2, dtype=object); reviews[0] = [1, 2, 3]; reviews[1] = [4, 5]
    m = seq_model()
    refused(lambda: m.fit(reviews, [0, 1], verbose=0), TypeError, "pad_sequences")
    refused(lambda: m.predict(reviews, verbose=0), TypeError, "pad_sequences")
    still_usable(m)
""")
case("seq", "zero_length_sequences_refused_everywhere", """
    m = seq_model()
    refused(lambda: m.predict(np.zeros((4, 0), "int64"), verbose=0), ValueError, "length 0")
    u = keras.Sequential([L.Embedding(10, 3), L.LSTM(4), L.Dense(2, activation="softmax")])
    u.compile("rmsprop", "sparse_categorical_crossentropy")
    refused(lambda: u.fit(np.zeros((4, 0), "int64"), np.zeros(4), verbose=0), ValueError,
            "length 0")
    assert not u.built
    for cell in ["SimpleRNN", "LSTM", "GRU"]:
        refused(lambda: getattr(L, cell)(3)(np.zeros((2, 0, 2), "float32")), ValueError,
                "no time steps")
    still_usable(m); still_usable(u)
""")

# ------------------------------------------------------------ Embedding indices
case("seq", "out_of_vocabulary_index_names_layer_and_index", """
    m = seq_model(); m.fit(xs, ys, verbose=0); w = m.get_weights()
    bad = xs.copy(); bad[3, 4] = 10
    for call in [lambda: m.fit(bad, ys, verbose=0), lambda: m.evaluate(bad, ys, verbose=0),
                 lambda: m.predict(bad, verbose=0), lambda: m.train_on_batch(bad, ys)]:
        refused(call, ValueError, f"x: Embedding '{m.layers[0].name}': index 10 at position "
                "\\\\(3, 4\\\\).*input_dim=10")
    assert same_weights(w, m.get_weights())
    still_usable(m)
""")
case("seq", "bad_index_in_the_last_batch_refused_before_any_step", """
    # found mid-epoch, it left 7 batches trained and named a position inside
    # the 8th (shuffled) batch; now the whole input is checked first
    m = seq_model()
    x = rng.integers(1, 10, (64, 6)); x[63, 2] = 10
    w = m.get_weights()
    refused(lambda: m.fit(x, np.arange(64) % 2, batch_size=8, verbose=0), ValueError,
            "index 10 at position \\\\(63, 2\\\\)")
    refused(lambda: m.fit(xs, ys, batch_size=8, verbose=0, validation_data=(x, np.arange(64) % 2)),
            ValueError, "validation_data x: .*index 10")
    assert same_weights(w, m.get_weights()) and m.optimizer.iterations == 0
    still_usable(m)
""")
case("seq", "negative_index_names_layer_and_index", """
    m = seq_model(); bad = xs.copy(); bad[0, 0] = -1
    refused(lambda: m.predict(bad, verbose=0), ValueError, f"'{m.layers[0].name}'.*index -1")
    refused(lambda: m.layers[0](np.array([[-3, 1]])), ValueError, "index -3")
    still_usable(m)
""")
case("seq", "index_past_int32_is_refused_not_wrapped", """
    # 2**32 + 3 would read row 3 if the index were cut to 32 bits
    m = seq_model()
    for v in [2 ** 32 + 3, 2 ** 31, 2 ** 63 - 1]:
        bad = xs.copy(); bad[1, 1] = v
        refused(lambda: m.predict(bad, verbose=0), ValueError, f"index {v}")
    refused(lambda: m.predict(np.full((1, 6), 2 ** 64 - 1, np.uint64), verbose=0), ValueError,
            "out of range")
    refused(lambda: m.predict(np.full((1, 6), 1e20), verbose=0), ValueError, "out of range")
""")
case("seq", "fractional_and_bool_indices", """
    m = seq_model()
    refused(lambda: m.predict(xs + 0.5, verbose=0), ValueError, "not an integer")
    # floats holding whole numbers are indices (the book's float inputs), as in Keras
    assert np.array_equal(m.predict(xs.astype("float32"), verbose=0), m.predict(xs, verbose=0))
""")

# ------------------------------------------------------------ masking
case("seq", "mask_zero_all_zero_rows_give_the_initial_state", """
    # a row with every step masked leaves the LSTM at its zero initial state
    # (as in Keras): the output is the Dense layer applied to zeros
    for cell in ["SimpleRNN", "LSTM", "GRU"]:
        m = seq_model(cell, mask_zero=True)
        x = xs.copy(); x[2] = 0; x[5] = 0
        p = m.predict(x, verbose=0)
        k, b = m.layers[-1].get_weights()
        e = np.exp(b - b.max()); expect = e / e.sum()
        assert np.allclose(p[2], expect, atol=1e-6) and np.allclose(p[5], expect, atol=1e-6), cell
        m.fit(np.zeros((8, 6), "int64"), ys, epochs=2, verbose=0)     # nothing but padding
        assert all(np.isfinite(w).all() for w in m.get_weights())
        still_usable(m)
""")
case("seq", "mask_zero_pre_padding_equals_the_unpadded_sequence", """
    m = seq_model("LSTM", steps=6, mask_zero=True)
    short = keras.Sequential([L.Input((3,)), L.Embedding(10, 3, mask_zero=True), L.LSTM(4),
                              L.Dense(2, activation="softmax")])
    short.set_weights(m.get_weights())
    s = xs[:, 3:]
    padded = ps(list(s), maxlen=6)
    assert np.allclose(m.predict(padded, verbose=0), short.predict(s, verbose=0), atol=1e-5)
""")

# ------------------------------------------------------------ NaN / inf / length
case("seq", "nan_and_inf_into_recurrent_models_refused", """
    for cell in ["SimpleRNN", "LSTM", "GRU"]:
        m = keras.Sequential([L.Input((5, 2)), getattr(L, cell)(3), L.Dense(1)])
        m.compile("sgd", "mse")
        for v in [np.nan, np.inf, -np.inf]:
            bad = np.ones((4, 5, 2), "float32"); bad[1, 3, 0] = v
            refused(lambda: m.fit(bad, np.zeros(4), verbose=0), ValueError, "NaN or inf")
            refused(lambda: m.predict(bad, verbose=0), ValueError, "NaN or inf .*\\\\(1, 3, 0\\\\)")
        m.fit(np.ones((4, 5, 2), "float32"), np.zeros(4), verbose=0)
""")
case("seq", "nan_into_a_recurrent_layer_stays_in_its_own_sample", """
    # called directly (no model check), NaN propagates as in Keras -- but only
    # through its own sample: the other rows equal the layer on them alone
    x = rng.normal(size=(4, 5, 2)).astype("float32")
    for cell in ["SimpleRNN", "LSTM", "GRU"]:
        layer = getattr(L, cell)(3)
        clean = layer(x)
        bad = x.copy(); bad[1, 2, 1] = np.nan
        out = layer(bad)
        assert np.isnan(out[1]).all(), cell
        assert np.array_equal(out[[0, 2, 3]], clean[[0, 2, 3]]), cell
""")
case("seq", "huge_values_saturate_and_stay_finite", """
    for cell in ["SimpleRNN", "LSTM", "GRU"]:
        m = keras.Sequential([L.Input((5, 2)), getattr(L, cell)(3), L.Dense(1)])
        m.compile("sgd", "mse")
        big = np.full((4, 5, 2), 1e30, "float32")
        h = m.fit(big, np.zeros(4), verbose=0).history["loss"][0]
        assert np.isfinite(h) and np.isfinite(m.predict(big, verbose=0)).all(), cell
""")
case("seq", "very_long_sequence_equals_numpy_recurrence", """
    # 5,000 steps: the state stays finite and equals h = tanh(x W + h U + b)
    layer = L.SimpleRNN(2)
    x = rng.normal(size=(1, 5000, 1)).astype("float32")
    out = layer(x)
    W, U, b = (np.asarray(v, "float64") for v in layer.get_weights())
    h = np.zeros((1, 2))
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ W + h @ U + b)
    assert np.allclose(out, h, atol=1e-4), (out, h)
""")
case("seq", "embedding_output_too_big_for_memory_is_a_memory_error", """
    # (2, 5e6) indices into 128-wide vectors: 5 GB of float32 under a 4 GiB limit
    if not UNDER_ASAN:      # no address limit under ASan: it would really allocate it
        m = keras.Sequential([L.Input((5_000_000,)), L.Embedding(10, 128), L.SimpleRNN(2)])
        refused(lambda: m.predict(np.ones((2, 5_000_000), "int32"), verbose=0, batch_size=2),
                MemoryError, "")
        small = keras.Sequential([L.Input((5,)), L.Embedding(10, 128), L.SimpleRNN(2)])
        assert small.predict(np.ones((2, 5), "int32"), verbose=0).shape == (2, 2)
""")

# ------------------------------------------------------------ imdb.npz
case("imdb", "imdb_global_reduce_os_system_not_run", """
    stream = pickle.dumps(TouchOsSystem(), protocol=2)      # GLOBAL posix system + REDUCE
    imdb_refused(npz({"x_train.npy": npy(stream)}), "posix.system|os.system|nothing in it was executed")
    payload_was_not_run_but_is_live(stream)
""")
case("imdb", "imdb_stack_global_exec_not_run", """
    stream = pickle.dumps(TouchExec(), protocol=4)          # STACK_GLOBAL builtins exec
    imdb_refused(npz({"x_train.npy": npy(stream)}), "exec")
    payload_was_not_run_but_is_live(stream)
""")
case("imdb", "imdb_protocol0_text_payload_not_run", """
    stream = b"cos\\nsystem\\n(S'touch " + MARKER.encode() + b"'\\ntR."
    imdb_refused(npz({"x_train.npy": npy(stream)}), "not allowed|not part of")
    payload_was_not_run_but_is_live(stream)
""")
case("imdb", "imdb_payload_hidden_inside_a_review_not_run", """
    arr = np.empty(2, dtype=object); arr[0] = [1, 2, 3]; arr[1] = TouchOsSystem()
    stream = pickle.dumps(arr, protocol=2)
    imdb_refused(npz({"x_train.npy": npy(stream, (2,))}), "system")
    payload_was_not_run_but_is_live(stream)
""")
case("imdb", "imdb_truncated_files", """
    data = open(SMALL, "rb").read()
    for cut in [0, 10, len(data) // 3, len(data) // 2, len(data) - 5]:
        p = os.path.join(T, "cut.npz"); open(p, "wb").write(data[:cut])
        imdb_refused(p, "not an .npz|truncated|missing|corrupt|malformed")
    good = zipfile.ZipFile(SMALL).read("x_train.npy")
    imdb_refused(npz({"x_train.npy": good[: len(good) // 2]}), "truncated|malformed")
""")
case("imdb", "imdb_wrong_keys", """
    imdb_refused(npz({"x_test.npy": None}), "x_test.npy' is missing")
    imdb_refused(npz({"y_train.npy": None}), "y_train.npy' is missing")
""")
case("imdb", "imdb_object_array_of_floats_or_dicts", """
    for row, msg in [([1.5, 2.0], "BINFLOAT"), ({"a": 1}, "DICT"), ("abc", "UNICODE|not a list")]:
        arr = np.empty(1, dtype=object); arr[0] = row
        imdb_refused(npz({"x_train.npy": npy(pickle.dumps(arr, protocol=2))}), msg)
""")
case("imdb", "imdb_huge_declared_lengths", """
    arr = np.empty(2, dtype=object); arr[0] = [1]; arr[1] = [2]
    # the header claims 10**15 reviews; a bytes opcode claims 2 GB
    imdb_refused(npz({"x_train.npy": npy(pickle.dumps(arr, protocol=2), (10 ** 15,))}),
                 "header says|element|not a list")
    huge = b"\\x80\\x02B" + (2 ** 31 - 1).to_bytes(4, "little") + b"xx"
    imdb_refused(npz({"x_train.npy": npy(huge)}), "truncated or malformed")
""")
case("imdb", "imdb_zip_bomb_member_refused_before_unpacking", """
    # a real deflate bomb (16 MiB of zeros in ~16 KB) whose directory entry
    # says it unpacks to 3.75 GiB: refused from the entry, before inflating;
    # an entry that lies the other way is cut off by zipfile at the size it
    # declares (then fails its CRC)
    import struct
    p = os.path.join(T, "bomb.npz")
    good = zipfile.ZipFile(SMALL)
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for n in good.namelist():
            z.writestr(n, bytes(1 << 24) if n == "x_train.npy" else good.read(n))
    data = bytearray(open(p, "rb").read())
    at = data.index(b"PK\\x01\\x02")
    while True:                       # the central directory entry of x_train.npy
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46: at + 46 + name_len] == b"x_train.npy":
            break
        at = data.index(b"PK\\x01\\x02", at + 4)
    struct.pack_into("<I", data, at + 24, 0xF0000000)
    open(p, "wb").write(bytes(data))
    imdb_refused(p, "would unpack to 4,026,531,840 bytes")
    struct.pack_into("<I", data, at + 24, 1000)
    open(p, "wb").write(bytes(data))
    imdb_refused(p, "damaged|not a valid|truncated|refused")
""")
case("imdb", "imdb_labels_that_are_not_integer_labels", """
    n = len(np.load(SMALL)["y_train"])
    obj = np.empty(n, dtype=object); obj[:] = 0
    imdb_refused(npz({"y_train.npy": npy(pickle.dumps(obj, protocol=2), (n,))}), "not a numeric")
    imdb_refused(npz({"y_train.npy": npy_plain(np.zeros(n))}), "integer labels")
    imdb_refused(npz({"y_train.npy": npy_plain(np.zeros(3, "int64"))}), "integer labels")
""")

# ------------------------------------------------------------ recurrent .keras files
case("rnnfiles", "lstm_file_kernel_of_wrong_shape", """
    m, p = saved_rnn("LSTM")
    load_refused(edit_h5(p, lambda f: replace_ds(f, "layers/lstm/cell/vars/0",
                                                 np.zeros((2, 16), "float32"))),
                 "layer .lstm.*has shape \\\\(2, 16\\\\) in the file; the model needs \\\\(3, 16\\\\)")
""")
case("rnnfiles", "lstm_file_recurrent_kernel_transposed", """
    m, p = saved_rnn("LSTM")
    load_refused(edit_h5(p, lambda f: replace_ds(f, "layers/lstm/cell/vars/1",
                                                 np.zeros((16, 4), "float32"))), "lstm|shape")
""")
case("rnnfiles", "gru_file_bias_of_the_other_layout", """
    # reset_after=True keeps a (2, 3*units) bias; a (3*units,) one is the other layout
    m, p = saved_rnn("GRU")
    load_refused(edit_h5(p, lambda f: replace_ds(f, "layers/gru/cell/vars/2",
                                                 np.zeros((12,), "float32"))), "gru|shape")
""")
case("rnnfiles", "simple_rnn_file_missing_a_weight", """
    m, p = saved_rnn("SimpleRNN")
    load_refused(edit_h5(p, lambda f: f.__delitem__("layers/simple_rnn/cell/vars/1")),
                 "simple_rnn|missing|weights")
""")
case("rnnfiles", "units_in_config_disagree_with_weights", """
    m, p = saved_rnn("LSTM")
    load_refused(edit_config(p, lambda c: layer_cfg(c, "LSTM").update(units=7)),
                 "needs .* parameters but the file holds")
""")
case("rnnfiles", "embedding_input_dim_disagrees_with_weights", """
    m, p = saved_rnn("GRU")
    load_refused(edit_config(p, lambda c: layer_cfg(c, "Embedding").update(input_dim=11)),
                 "embedding|shape")
""")
case("rnnfiles", "nan_weights_in_a_recurrent_file_refused", """
    m, p = saved_rnn("LSTM")
    q = edit_h5(p, lambda f: replace_ds(f, "layers/lstm/cell/vars/1",
                                        np.full((4, 16), np.nan, "float32")))
    load_refused(q, "recurrent_kernel contains NaN")
""")

GROUPS = sorted({g for g, _ in CASES.values()})
_RESULTS = {}


@pytest.mark.skipif(not IS_POSIX, reason="the campaign uses POSIX resource limits")
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_ch9(name):
    group = CASES[name][0]
    if group == "rnnfiles":
        pytest.importorskip("h5py")
    if group not in _RESULTS:
        _RESULTS[group] = _run_group(group, CASES, HELPERS)
    ok, detail = _RESULTS[group][name]
    assert ok, detail


def test_campaign_has_at_least_fifteen_cases():
    assert len(CASES) >= 15, len(CASES)
