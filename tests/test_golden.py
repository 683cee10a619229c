"""Parity with Keras 3 (TensorFlow backend): nncore must reproduce the
per-step losses, metrics, final weights, predictions and evaluation that
real Keras computed for the same models, weights and batches.

The fixtures and the script that made them (needs TensorFlow; not run by CI)
are in tests/fixtures/ (make_golden.py states the Keras version).
"""
import glob
import json
import os

import numpy as np
import pytest

import nncore as keras

FIXTURES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fixtures", "golden_*.npz")))


def _model(cfg, fx):
    layers = [keras.Input(shape=(cfg["input_features"],))]
    for spec in cfg["layers"]:
        reg = spec["kernel_regularizer"]
        layers.append(keras.layers.Dense(
            spec["units"], activation=spec["activation"],
            kernel_regularizer=keras.regularizers.L2(reg["l2"]) if reg else None))
    model = keras.Sequential(layers)
    loss_cls = {"sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
                "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
                "binary_crossentropy": keras.losses.BinaryCrossentropy,
                "mean_squared_error": keras.losses.MeanSquaredError}[cfg["loss"]]
    loss = loss_cls(from_logits=True) if cfg["from_logits"] else loss_cls()
    opt = getattr(keras.optimizers, cfg["optimizer"])(**cfg["optimizer_kwargs"])
    model.compile(optimizer=opt, loss=loss, metrics=cfg["metrics"] or None)
    n = len([k for k in fx.files if k.startswith("w0_")])
    model.set_weights([fx[f"w0_{i}"] for i in range(n)])
    return model, n


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: os.path.basename(p)[7:-4])
def test_matches_keras(path):
    fx = np.load(path, allow_pickle=False)
    cfg = json.loads(str(fx["config"]))
    assert cfg["train_on_batch_accumulates_metrics"] is False
    model, n = _model(cfg, fx)
    x, y = fx["x"], fx["y"]
    losses, accs = [], []
    for i in range(cfg["steps"]):
        out = model.train_on_batch(x[i], y[i])
        if cfg["metrics"]:
            losses.append(out[0])
            accs.append(out[1])
        else:
            losses.append(out)
    np.testing.assert_allclose(losses, fx["losses"], rtol=2e-5, atol=1e-6)
    if cfg["metrics"]:
        np.testing.assert_allclose(accs, fx["acc"], rtol=1e-6)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, fx[f"w_{i}"], rtol=1e-4, atol=2e-6,
                                   err_msg=f"weight {i} after {cfg['steps']} steps")
    bs = cfg["batch_size"]
    pred = model.predict(x.reshape(-1, x.shape[-1]), batch_size=bs, verbose=0)
    np.testing.assert_allclose(pred.reshape(fx["pred"].shape), fx["pred"], rtol=1e-4, atol=2e-6)
    yflat = y.reshape((-1,) + y.shape[2:])
    ev = model.evaluate(x.reshape(-1, x.shape[-1]), yflat, batch_size=bs, verbose=0)
    np.testing.assert_allclose(np.atleast_1d(ev), fx["eval"], rtol=2e-5, atol=1e-6)


def test_fixtures_present():
    # the parametrized test above would silently vanish without them
    assert len(FIXTURES) >= 20
