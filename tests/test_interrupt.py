"""Ctrl-C handling inside fit respects what the user installed for SIGINT.

(tests/test_faults.py covers the default case: KeyboardInterrupt after a whole
step, in a child process.)
"""
import os
import signal
import threading

import numpy as np
import pytest

import nncore as keras

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs os.kill(SIGINT)")


def _model_and_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 256)).astype(np.float32)
    y = rng.integers(0, 4, 4000)
    m = keras.Sequential([keras.Input(shape=(256,)), keras.layers.Dense(256, activation="relu"),
                          keras.layers.Dense(4, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    return m, x, y


def _fit_while_sigint_arrives(m, x, y, epochs=20):
    """fit(), with SIGINT sent to this process 50 ms after it starts."""
    sent = []
    timer = threading.Timer(0.05, lambda: (sent.append(1), os.kill(os.getpid(), signal.SIGINT)))
    timer.start()
    try:
        h = m.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
        assert sent, "fit ended before the signal was sent: make it longer"
        return h
    finally:
        timer.cancel()
        timer.join()


@pytest.mark.parametrize("fused", [True, False])
def test_user_sigint_handler_is_called_and_training_goes_on(fused):
    calls = []

    def handler(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        m, x, y = _model_and_data()
        m.use_fused = fused
        h = _fit_while_sigint_arrives(m, x, y)
        assert calls == [signal.SIGINT]              # delivered once, to the user's handler
        assert len(h.history["loss"]) == 20          # which chose not to stop training
        assert signal.getsignal(signal.SIGINT) is handler   # fit put it back
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        m, x, y = _model_and_data()
        h = _fit_while_sigint_arrives(m, x, y)
        assert len(h.history["loss"]) == 20
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
