"""pytest-benchmark: fit / evaluate / predict of the book's models, so speed
regressions show up.  Run with

    pytest bench/test_bench_models.py --benchmark-only

(not part of the test suite).  Data: real Fashion-MNIST (NNCORE_DATA_DIR or
../shared/data/fashion-mnist), 48,000 training and 12,000 validation images.
For nncore vs TensorFlow vs PyTorch side by side, see bench/compare.py.
"""
import os
import pathlib

import numpy as np
import pytest

import nncore as keras

HERE = pathlib.Path(__file__).resolve().parent
DATA = os.environ.get("NNCORE_DATA_DIR", str(HERE.parent.parent / "shared" / "data" / "fashion-mnist"))


@pytest.fixture(scope="module")
def data():
    if not os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")):
        pytest.skip("Fashion-MNIST not found; set NNCORE_DATA_DIR")
    os.environ["NNCORE_DATA_DIR"] = DATA
    (x, y), _ = keras.datasets.fashion_mnist.load_data()
    x = (x / 255.0).astype(np.float32)
    return x[:48000], y[:48000], x[48000:], y[48000:]


def w3(optimizer="rmsprop"):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                          keras.layers.Dense(100, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def w5():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input(shape=(784,)),
                          keras.layers.Dense(1024, activation="relu"),
                          keras.layers.Dense(1024, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.benchmark(group="W3 fit epoch (48k, batch 32)")
def test_w3_fit_epoch(benchmark, data):
    x, y, _, _ = data
    m = w3()
    m.fit(x[:3200], y[:3200], epochs=1, verbose=0)   # warm-up (buffers, pages)
    benchmark.pedantic(lambda: m.fit(x, y, epochs=1, verbose=0), rounds=3, iterations=1)


@pytest.mark.benchmark(group="W3 fit epoch (48k, batch 32)")
def test_w3_fit_epoch_one_thread(benchmark, data):
    """The fused loop without its thread team: side by side with
    test_w3_fit_epoch, this shows what the team gains (or, on a busy machine,
    why the loop's thread chooser would fall back to one thread)."""
    x, y, _, _ = data
    threads = keras.get_num_threads()
    keras.set_num_threads(1)
    try:
        m = w3()
        m.fit(x[:3200], y[:3200], epochs=1, verbose=0)
        benchmark.pedantic(lambda: m.fit(x, y, epochs=1, verbose=0), rounds=3, iterations=1)
    finally:
        keras.set_num_threads(threads)


@pytest.mark.benchmark(group="W3 fit epoch (48k, batch 32)")
def test_w3_fit_epoch_per_batch_path(benchmark, data):
    x, y, _, _ = data
    m = w3()
    m.use_fused = False
    benchmark.pedantic(lambda: m.fit(x, y, epochs=1, verbose=0), rounds=2, iterations=1)


@pytest.mark.benchmark(group="W3 evaluate/predict (12k)")
def test_w3_evaluate(benchmark, data):
    _, _, xv, yv = data
    m = w3()
    benchmark(lambda: m.evaluate(xv, yv, verbose=0))


@pytest.mark.benchmark(group="W3 evaluate/predict (12k)")
def test_w3_predict(benchmark, data):
    _, _, xv, _ = data
    m = w3()
    benchmark(lambda: m.predict(xv, verbose=0))


@pytest.mark.benchmark(group="W5 fit epoch (48k, batch 256)")
def test_w5_fit_epoch(benchmark, data):
    x, y, _, _ = data
    m = w5()
    xf = x.reshape(len(x), -1)
    m.fit(xf[:2560], y[:2560], epochs=1, batch_size=256, verbose=0)
    benchmark.pedantic(lambda: m.fit(xf, y, epochs=1, batch_size=256, verbose=0),
                       rounds=2, iterations=1)


@pytest.mark.benchmark(group="W5 evaluate/predict (12k)")
def test_w5_evaluate(benchmark, data):
    _, _, xv, yv = data
    m = w5()
    benchmark.pedantic(lambda: m.evaluate(xv.reshape(len(xv), -1), yv, batch_size=256, verbose=0),
                       rounds=3, iterations=1)


@pytest.mark.benchmark(group="W5 evaluate/predict (12k)")
def test_w5_predict(benchmark, data):
    _, _, xv, _ = data
    m = w5()
    benchmark.pedantic(lambda: m.predict(xv.reshape(len(xv), -1), batch_size=256, verbose=0),
                       rounds=3, iterations=1)
