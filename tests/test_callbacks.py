"""Callbacks driven through CallbackList exactly as a fit loop drives them,
with a tiny fake model implementing the model contract:

  stop_training, get_weights()/set_weights(), save(path) (.npz),
  save_weights(path) (.weights.npz), optimizer.learning_rate (a float), history.
"""
import csv
import math
import os
import warnings

import numpy as np
import pytest

from nncore.callbacks import (Callback, CallbackList, CSVLogger, EarlyStopping, History,
                              LambdaCallback, LearningRateScheduler, ModelCheckpoint,
                              ProgbarLogger, ReduceLROnPlateau, TerminateOnNaN)
from nncore.callbacks.monitor import metric_direction


class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self.learning_rate = learning_rate


class FakeModel:
    """Weights are arrays whose value is the number of epochs trained so far."""

    def __init__(self, learning_rate=0.1):
        self.weights = [np.zeros((2, 3)), np.zeros(3)]
        self.optimizer = FakeOptimizer(learning_rate)
        self.stop_training = False
        self.history = None
        self.saved = []             # (kind, path, weight value)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w, copy=True) for w in weights]

    @property
    def value(self):
        return float(self.weights[0][0, 0])

    def _write(self, kind, path):
        with open(path, "wb") as f:             # np.savez must not append a suffix
            np.savez(f, *self.weights)
        self.saved.append((kind, str(path), self.value))

    def save(self, path):
        assert str(path).endswith(".npz") and not str(path).endswith(".weights.npz")
        self._write("model", path)

    def save_weights(self, path):
        assert str(path).endswith(".weights.npz")
        self._write("weights", path)


def fake_fit(model, epochs, val_losses=None, callbacks=None, *, train_losses=None,
             metrics=None, steps=3, verbose=0):
    """Drive ``callbacks`` like Model.fit: returns model.history."""
    cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                       verbose=verbose, epochs=epochs, steps=steps)
    model.stop_training = False
    logs = {}
    cbs.on_train_begin()
    try:
        for epoch in range(epochs):
            cbs.on_epoch_begin(epoch)
            hooks = cbs.needs_batch_hooks()
            loss = train_losses[epoch] if train_losses is not None else 1.0 / (epoch + 1)
            for b in range(steps):
                if hooks:
                    cbs.on_train_batch_begin(b)
                for w in model.weights:             # "training": epoch + (b+1)/steps
                    w[...] = epoch + (b + 1) / steps
                batch_logs = {"loss": loss}
                if hooks:
                    cbs.on_train_batch_end(b, batch_logs)
                else:
                    cbs.update_progress(b + 1, batch_logs)
                if model.stop_training:
                    break
            logs = {"loss": loss}
            for key, values in (metrics or {}).items():
                if not key.startswith("val_"):
                    logs[key] = values[epoch]
            if val_losses is not None or any(k.startswith("val_") for k in metrics or {}):
                cbs.on_test_begin()
                val_logs = {}
                if val_losses is not None:
                    val_logs["loss"] = val_losses[epoch]
                for key, values in (metrics or {}).items():
                    if key.startswith("val_"):
                        val_logs[key[4:]] = values[epoch]
                cbs.on_test_end(val_logs)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
    finally:
        cbs.on_train_end(logs)
    return model.history


# ====================================================================== History
def test_history_collects_logs():
    model = FakeModel()
    h = fake_fit(model, 3, val_losses=[0.9, 0.8, 0.7], metrics={"accuracy": [0.1, 0.2, 0.3]})
    assert isinstance(h, History)
    assert h is model.history and h.model is model
    assert h.epoch == [0, 1, 2]
    assert h.history == {"loss": [1.0, 0.5, 1 / 3], "accuracy": [0.1, 0.2, 0.3],
                         "val_loss": [0.9, 0.8, 0.7]}
    assert h.params == {"verbose": 0, "epochs": 3, "steps": 3}


def test_callback_list_order_and_no_duplicates():
    own = History()
    es = EarlyStopping(monitor="loss")
    cbs = CallbackList([es, own], add_history=True, add_progbar=True, model=FakeModel(),
                       verbose=1, epochs=1, steps=1)
    assert cbs.callbacks[:2] == [es, own]
    assert isinstance(cbs.callbacks[2], ProgbarLogger) and len(cbs.callbacks) == 3
    assert cbs.model.history is own
    assert es.params == {"verbose": 1, "epochs": 1, "steps": 1}


def test_callback_list_rejects_classes_and_non_callbacks():
    with pytest.raises(TypeError, match="instance"):
        CallbackList([EarlyStopping])
    with pytest.raises(TypeError):
        CallbackList([object()])


# ====================================================================== needs_batch_hooks
class BatchEnd(Callback):
    def on_train_batch_end(self, batch, logs=None):
        pass


class OldStyleBatch(Callback):
    def on_batch_begin(self, batch, logs=None):
        pass


class EvalBatchEnd(Callback):
    def on_test_batch_end(self, batch, logs=None):
        pass


class EpochOnly(Callback):
    def on_epoch_end(self, epoch, logs=None):
        pass


def test_needs_batch_hooks():
    assert not CallbackList([]).needs_batch_hooks()
    assert not CallbackList([EpochOnly(), EarlyStopping(), ReduceLROnPlateau(), History()],
                            add_progbar=True).needs_batch_hooks()
    assert CallbackList([EpochOnly(), BatchEnd()]).needs_batch_hooks()
    assert CallbackList([OldStyleBatch()]).needs_batch_hooks()
    assert CallbackList([TerminateOnNaN()]).needs_batch_hooks()
    t = CallbackList([EvalBatchEnd()])
    assert not t.needs_batch_hooks() and t.needs_test_hooks() and not t.needs_predict_hooks()
    assert not ProgbarLogger().needs_batch_hooks("train")
    assert not ProgbarLogger().needs_batch_hooks("test")


def test_batch_hooks_called_only_when_needed():
    seen = []
    fake_fit(FakeModel(), 2, callbacks=[LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append((batch, logs["loss"])))])
    assert seen == [(0, 1.0), (1, 1.0), (2, 1.0), (0, 0.5), (1, 0.5), (2, 0.5)]


# ====================================================================== EarlyStopping
def test_early_stopping_patience():
    model = FakeModel()
    es = EarlyStopping(patience=2)
    h = fake_fit(model, 10, [1.0, 0.9, 0.95, 0.96, 0.97, 0.5], [es])
    assert h.epoch == [0, 1, 2, 3]
    assert es.stopped_epoch == 3 and es.best == 0.9 and es.best_epoch == 1
    assert model.value == 4.0                       # not restored by default


def test_early_stopping_patience_zero_and_first_epoch():
    es = EarlyStopping(monitor="loss")              # patience 0
    h = fake_fit(FakeModel(), 5, train_losses=[1.0, 1.1, 0.5, 0.4, 0.3], callbacks=[es])
    assert h.epoch == [0, 1] and es.stopped_epoch == 1


def test_early_stopping_min_delta():
    es = EarlyStopping(patience=1, min_delta=0.1)
    h = fake_fit(FakeModel(), 4, [1.0, 0.95, 0.92, 0.91], [es])
    assert h.epoch == [0, 1] and es.stopped_epoch == 1
    es = EarlyStopping(patience=1, min_delta=0.0)
    assert fake_fit(FakeModel(), 4, [1.0, 0.95, 0.92, 0.91], [es]).epoch == [0, 1, 2, 3]
    # max mode (auto for accuracy): +0.05 is not enough with min_delta=0.1
    es = EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.1)
    h = fake_fit(FakeModel(), 3, callbacks=[es], metrics={"val_accuracy": [0.5, 0.55, 0.7]})
    assert h.epoch == [0, 1]


def test_early_stopping_baseline():
    # the baseline is never beaten: wait is not reset even on improvement
    es = EarlyStopping(patience=2, baseline=0.5)
    h = fake_fit(FakeModel(), 6, [1.0, 0.9, 0.95, 0.8, 0.7, 0.6], [es])
    assert h.epoch == [0, 1, 2] and es.stopped_epoch == 2
    # without baseline the same run continues (wait reset at epoch 3)
    es = EarlyStopping(patience=2)
    assert fake_fit(FakeModel(), 6, [1.0, 0.9, 0.95, 0.8, 0.7, 0.6], [es]).epoch == list(range(6))
    # a beaten baseline behaves as no baseline
    es = EarlyStopping(patience=2, baseline=2.0)
    assert fake_fit(FakeModel(), 6, [1.0, 0.9, 0.95, 0.8, 0.7, 0.6], [es]).epoch == list(range(6))


def test_early_stopping_start_from_epoch():
    es = EarlyStopping(start_from_epoch=2)
    h = fake_fit(FakeModel(), 5, [1.0, 2.0, 3.0, 4.0, 5.0], [es])
    assert h.epoch == [0, 1, 2, 3] and es.stopped_epoch == 3 and es.best == 3.0
    es = EarlyStopping()
    assert fake_fit(FakeModel(), 5, [1.0, 2.0, 3.0, 4.0, 5.0], [es]).epoch == [0, 1]


def test_early_stopping_restore_best_weights_on_stop(capsys):
    model = FakeModel()
    es = EarlyStopping(patience=2, restore_best_weights=True, verbose=1)
    h = fake_fit(model, 10, [1.0, 0.5, 0.7, 0.8], [es])
    assert h.epoch == [0, 1, 2, 3]
    assert model.value == 2.0                       # weights after epoch index 1
    assert capsys.readouterr().out == (
        "Epoch 4: early stopping\n"
        "Restoring model weights from the end of the best epoch: 2.\n")


def test_early_stopping_restores_when_all_epochs_ran(capsys):
    model = FakeModel()
    es = EarlyStopping(patience=5, restore_best_weights=True, verbose=1)
    h = fake_fit(model, 3, [1.0, 0.5, 0.7], [es])
    assert h.epoch == [0, 1, 2] and es.stopped_epoch == 0
    assert model.value == 2.0
    assert capsys.readouterr().out == \
        "Restoring model weights from the end of the best epoch: 2.\n"


def test_early_stopping_silent_and_no_restore_by_default(capsys):
    model = FakeModel()
    fake_fit(model, 4, [1.0, 0.5, 0.7, 0.8], [EarlyStopping(patience=1)])
    assert model.value == 3.0 and capsys.readouterr().out == ""


def test_early_stopping_reusable_across_fits():
    es = EarlyStopping(patience=1, restore_best_weights=True)
    fake_fit(FakeModel(), 5, [0.1, 0.2, 0.3, 0.4, 0.5], [es])
    assert es.stopped_epoch == 1
    model = FakeModel()
    h = fake_fit(model, 3, [5.0, 4.0, 3.0], [es])   # worse than the old best: must not matter
    assert h.epoch == [0, 1, 2] and es.stopped_epoch == 0 and es.best == 3.0
    assert model.value == 3.0


def test_early_stopping_missing_monitor_warns_once():
    es = EarlyStopping(patience=0)
    with pytest.warns(UserWarning, match="Early stopping conditioned on metric `val_loss`") as rec:
        h = fake_fit(FakeModel(), 3, callbacks=[es])
    assert h.epoch == [0, 1, 2]
    assert sum("val_loss" in str(w.message) for w in rec) == 1
    assert "Available metrics are: loss" in str(rec[0].message)


def test_early_stopping_modes():
    with pytest.raises(ValueError, match="mode='max'"):
        fake_fit(FakeModel(), 2, callbacks=[EarlyStopping(monitor="foo")],
                 metrics={"foo": [1, 2]})
    es = EarlyStopping(monitor="foo", mode="max")
    assert fake_fit(FakeModel(), 3, callbacks=[es], metrics={"foo": [1, 2, 1]}).epoch == [0, 1, 2]
    assert es.stopped_epoch == 2
    with pytest.warns(UserWarning, match="unknown, fallback to auto"):
        es = EarlyStopping(mode="bigger")
    assert es.mode == "auto"


@pytest.mark.parametrize("name,direction", [
    ("loss", "min"), ("val_loss", "min"), ("reconstruction_loss", "min"),
    ("accuracy", "max"), ("val_accuracy", "max"), ("acc", "max"), ("val_acc", "max"),
    ("categorical_accuracy", "max"), ("sparse_categorical_accuracy", "max"),
    ("binary_accuracy", "max"), ("val_binary_accuracy", "max"), ("auc", "max"),
    ("mse", "min"), ("val_mae", "min"), ("mean_squared_error", "min"),
    ("categorical_crossentropy", "min"), ("foo", None), ("learning_rate", None),
])
def test_metric_direction(name, direction):
    assert metric_direction(name) == direction


def test_metric_direction_from_model_metric_objects():
    class M:
        name = "score"
        _direction = "up"

    class WithMetrics:
        metrics = [M()]

    assert metric_direction("val_score", WithMetrics()) == "max"
    assert metric_direction("val_score") is None


# ====================================================================== ModelCheckpoint
def test_checkpoint_filename_formatting(tmp_path):
    model = FakeModel()
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.npz")
    fake_fit(model, 2, [0.5, 0.41], [ModelCheckpoint(pattern)])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01-0.50.npz", "ckpt-02-0.41.npz"]
    with np.load(tmp_path / "ckpt-02-0.41.npz") as f:
        assert f["arr_0"][0, 0] == 2.0
    assert [kind for kind, _, _ in model.saved] == ["model", "model"]


def test_checkpoint_creates_directories(tmp_path):
    path = tmp_path / "a" / "b" / "m.npz"
    fake_fit(FakeModel(), 1, [0.5], [ModelCheckpoint(path)])
    assert path.exists()


def test_checkpoint_save_best_only_min(tmp_path, capsys):
    model = FakeModel()
    path = str(tmp_path / "best.npz")
    fake_fit(model, 3, [0.5, 0.6, 0.4], [ModelCheckpoint(path, save_best_only=True, verbose=1)])
    assert [v for _, _, v in model.saved] == [1.0, 3.0]
    assert capsys.readouterr().out == (
        f"\nEpoch 1: val_loss improved from None to 0.50000, saving model to {path}\n"
        "\nEpoch 2: val_loss did not improve from 0.50000\n"
        f"\nEpoch 3: val_loss improved from 0.50000 to 0.40000, saving model to {path}\n")


def test_checkpoint_save_best_only_modes(tmp_path):
    acc = {"val_accuracy": [0.5, 0.4, 0.6]}
    model = FakeModel()
    fake_fit(model, 3, callbacks=[ModelCheckpoint(str(tmp_path / "a.npz"),
             monitor="val_accuracy", save_best_only=True)], metrics=acc)
    assert [v for _, _, v in model.saved] == [1.0, 3.0]            # auto -> max
    model = FakeModel()
    fake_fit(model, 3, callbacks=[ModelCheckpoint(str(tmp_path / "b.npz"),
             monitor="val_accuracy", save_best_only=True, mode="min")], metrics=acc)
    assert [v for _, _, v in model.saved] == [1.0, 2.0]
    model = FakeModel()
    fake_fit(model, 3, [0.5, 0.6, 0.4], [ModelCheckpoint(str(tmp_path / "c.npz"),
             save_best_only=True, mode="max")])
    assert [v for _, _, v in model.saved] == [1.0, 2.0]


def test_checkpoint_initial_value_threshold(tmp_path, capsys):
    model = FakeModel()
    path = str(tmp_path / "m.npz")
    fake_fit(model, 2, [0.5, 0.4], [ModelCheckpoint(path, save_best_only=True, verbose=1,
                                                   initial_value_threshold=0.45)])
    assert [v for _, _, v in model.saved] == [2.0]
    assert capsys.readouterr().out == (
        "\nEpoch 1: val_loss did not improve from 0.45000\n"
        f"\nEpoch 2: val_loss improved from 0.45000 to 0.40000, saving model to {path}\n")


def test_checkpoint_verbose_every_epoch(tmp_path, capsys):
    path = str(tmp_path / "m.npz")
    fake_fit(FakeModel(), 1, [0.5], [ModelCheckpoint(path, verbose=1)])
    assert capsys.readouterr().out == f"\nEpoch 1: saving model to {path}\n"


def test_checkpoint_weights_only(tmp_path):
    model = FakeModel()
    path = tmp_path / "w-{epoch}.weights.npz"
    fake_fit(model, 2, [0.5, 0.4], [ModelCheckpoint(path, save_weights_only=True)])
    assert [kind for kind, _, _ in model.saved] == ["weights", "weights"]
    assert (tmp_path / "w-2.weights.npz").exists()


@pytest.mark.parametrize("path,weights_only,match", [
    ("m.h5", False, r"not legacy `\.h5`"),
    ("m.txt", False, r"must end in `\.npz`"),
    ("m.weights.npz", False, "save_weights_only=True"),
    ("m.weights.h5", False, "save_weights_only=True"),
    ("m.npz", True, r"must end in `\.weights\.npz`"),
    ("m.keras", True, r"\.weights\.h5"),
    ("m.h5", True, r"\.weights\.h5"),
])
def test_checkpoint_extension_checks(path, weights_only, match):
    with pytest.raises(ValueError, match=match):
        ModelCheckpoint(path, save_weights_only=weights_only)


def test_checkpoint_missing_monitor_warns_and_saves(tmp_path):
    model = FakeModel()
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        fake_fit(model, 2, callbacks=[ModelCheckpoint(str(tmp_path / "m.npz"),
                                                      save_best_only=True)])
    assert [v for _, _, v in model.saved] == [1.0, 2.0]


def test_checkpoint_missing_placeholder_raises(tmp_path):
    with pytest.raises(KeyError, match="Failed to format"):
        fake_fit(FakeModel(), 1, callbacks=[ModelCheckpoint(str(tmp_path / "{val_acc}.npz"))])


def test_checkpoint_save_freq_batches(tmp_path):
    model = FakeModel()
    cb = ModelCheckpoint(str(tmp_path / "ck-{epoch}-{batch}.npz"), save_freq=2)
    assert cb.needs_batch_hooks() and not ModelCheckpoint("m.npz").needs_batch_hooks()
    assert not cb.needs_batch_hooks("test")
    fake_fit(model, 2, [0.5, 0.4], [cb], steps=3)
    assert sorted(os.listdir(tmp_path)) == ["ck-1-2.npz", "ck-2-1.npz", "ck-2-3.npz"]
    for bad in ("batch", 0, -3, 1.5, True):
        with pytest.raises(ValueError, match="save_freq"):
            ModelCheckpoint("m.npz", save_freq=bad)


# ====================================================================== ReduceLROnPlateau
def test_reduce_lr_patience_and_factor():
    model = FakeModel(0.1)
    h = fake_fit(model, 5, [1.0] * 5, [ReduceLROnPlateau(patience=2, factor=0.5)])
    assert h.history["learning_rate"] == [0.1, 0.1, 0.1, 0.05, 0.05]
    assert model.optimizer.learning_rate == pytest.approx(0.025)


def test_reduce_lr_cooldown():
    model = FakeModel(0.1)
    fake_fit(model, 6, [1.0] * 6, [ReduceLROnPlateau(patience=1, factor=0.5, cooldown=2)])
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5 ** 3)   # epochs 2, 4, 6
    model = FakeModel(0.1)
    fake_fit(model, 6, [1.0] * 6, [ReduceLROnPlateau(patience=1, factor=0.5)])
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5 ** 5)


def test_reduce_lr_min_lr(capsys):
    model = FakeModel(0.1)
    h = fake_fit(model, 5, [1.0] * 5,
                 [ReduceLROnPlateau(patience=1, factor=0.1, min_lr=0.005, verbose=1)])
    assert model.optimizer.learning_rate == pytest.approx(0.005)
    assert h.history["learning_rate"][:3] == pytest.approx([0.1, 0.1, 0.01])
    out = capsys.readouterr().out
    assert "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.010000000000000002.\n" in out
    assert "\nEpoch 3: ReduceLROnPlateau reducing learning rate to 0.005.\n" in out


def test_reduce_lr_improvements_and_min_delta():
    model = FakeModel(0.1)
    fake_fit(model, 4, [1.0, 0.9, 0.8, 0.7], [ReduceLROnPlateau(patience=1)])
    assert model.optimizer.learning_rate == 0.1
    model = FakeModel(0.1)                  # steps smaller than min_delta do not count
    fake_fit(model, 3, [1.0, 0.99, 0.98], [ReduceLROnPlateau(patience=2, min_delta=0.05)])
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    model = FakeModel(0.1)                  # accuracy going up is improvement (auto -> max)
    fake_fit(model, 4, callbacks=[ReduceLROnPlateau(monitor="val_accuracy", patience=1)],
             metrics={"val_accuracy": [0.1, 0.2, 0.3, 0.4]})
    assert model.optimizer.learning_rate == 0.1


def test_reduce_lr_validation_and_missing_monitor():
    with pytest.raises(ValueError, match="factor >= 1.0"):
        ReduceLROnPlateau(factor=1.5)
    model = FakeModel(0.1)
    with pytest.warns(UserWarning, match="Learning rate reduction is conditioned on metric"):
        h = fake_fit(model, 3, callbacks=[ReduceLROnPlateau(patience=0)])
    assert model.optimizer.learning_rate == 0.1 and h.history["learning_rate"] == [0.1] * 3


# ====================================================================== LearningRateScheduler
def test_lr_scheduler_two_args_and_logs(capsys):
    model = FakeModel(0.1)
    h = fake_fit(model, 3, callbacks=[LearningRateScheduler(lambda epoch, lr: lr * 0.5,
                                                            verbose=1)])
    assert h.history["learning_rate"] == [0.05, 0.025, 0.0125]
    assert model.optimizer.learning_rate == 0.0125
    assert "\nEpoch 2: LearningRateScheduler setting learning rate to 0.025.\n" in \
        capsys.readouterr().out


def test_lr_scheduler_one_arg_and_errors():
    model = FakeModel(0.1)
    h = fake_fit(model, 2, callbacks=[LearningRateScheduler(lambda epoch: 1.0 / (epoch + 1))])
    assert h.history["learning_rate"] == [1.0, 0.5]
    with pytest.raises(ValueError, match="should be a float"):
        fake_fit(FakeModel(), 1, callbacks=[LearningRateScheduler(lambda e, lr: "fast")])

    def broken(epoch, lr):
        raise TypeError("user bug")
    with pytest.raises(TypeError, match="user bug"):       # not masked by a retry
        fake_fit(FakeModel(), 1, callbacks=[LearningRateScheduler(broken)])


# ====================================================================== CSVLogger
def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_logger_contents_and_append(tmp_path):
    path = tmp_path / "log.csv"
    fake_fit(FakeModel(), 2, [0.4, 0.3], [CSVLogger(path)], train_losses=[0.5, 0.25],
             metrics={"accuracy": [0.1, 0.2]})
    assert path.read_text() == ("epoch,accuracy,loss,val_loss\n"
                                "0,0.1,0.5,0.4\n"
                                "1,0.2,0.25,0.3\n")
    fake_fit(FakeModel(), 1, [0.2], [CSVLogger(path, append=True)], train_losses=[0.125],
             metrics={"accuracy": [0.3]})
    assert read_rows(path)[1:] == [["0", "0.1", "0.5", "0.4"], ["1", "0.2", "0.25", "0.3"],
                                   ["0", "0.3", "0.125", "0.2"]]
    fake_fit(FakeModel(), 1, [0.2], [CSVLogger(path)], train_losses=[0.125],
             metrics={"accuracy": [0.3]})                       # no append: overwritten
    assert read_rows(path) == [["epoch", "accuracy", "loss", "val_loss"],
                               ["0", "0.3", "0.125", "0.2"]]


def test_csv_logger_separator_no_validation_and_append_to_new_file(tmp_path):
    path = tmp_path / "new.csv"
    fake_fit(FakeModel(), 2, callbacks=[CSVLogger(path, separator=";", append=True)],
             train_losses=[0.5, 0.25])
    assert path.read_text() == "epoch;loss;val_loss\n0;0.5;NA\n1;0.25;NA\n"


# ====================================================================== TerminateOnNaN
def test_terminate_on_nan_batch(capsys):
    h = fake_fit(FakeModel(), 5, callbacks=[TerminateOnNaN()], train_losses=[1.0, math.nan, 0.5])
    assert h.epoch == [0, 1]
    assert capsys.readouterr().out == "Batch 0: Invalid loss, terminating training\n"
    h = fake_fit(FakeModel(), 5, callbacks=[TerminateOnNaN()], train_losses=[1.0, 2.0, math.inf])
    assert h.epoch == [0, 1, 2]


def test_terminate_on_nan_epoch_end_fallback(capsys):
    model = FakeModel()
    cb = TerminateOnNaN()
    cbs = CallbackList([cb], model=model, verbose=0, epochs=3, steps=1)
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 1.0})
    assert not model.stop_training
    cbs.on_epoch_end(1, {"loss": math.inf})
    assert model.stop_training
    assert capsys.readouterr().out == "Epoch 2: Invalid loss, terminating training\n"


def test_terminate_on_nan_raise_error():
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        fake_fit(FakeModel(), 2, callbacks=[TerminateOnNaN(raise_error=True)],
                 train_losses=[math.nan, 1.0])


@pytest.mark.parametrize("fused", [True, False])
def test_terminate_on_nan_stops_where_keras_does(fused, capsys):
    """Keras keeps the running loss in a float32 Mean (total += loss * batch):
    with every batch's loss 3.125e36 and 32 samples a batch, the float32 total
    passes float32's maximum (3.4e38) at the fourth batch, so Keras 3 logs inf
    there and TerminateOnNaN stops at batch 3 (checked against TensorFlow 2.21:
    losses 3.1249999e36, 3.1249999e36, 3.1249999e36, inf).  Summing in float64
    instead never overflows and trains all ten batches."""
    import nncore as keras
    x = np.ones((320, 1), np.float32)
    y = np.full((320, 1), 1.0e18, np.float32) * np.float32(1.7677669)   # y*y*32 ~ 1e38
    model = keras.Sequential([keras.Input((1,)),
                              keras.layers.Dense(1, kernel_initializer="zeros",
                                                 bias_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    model.use_fused = fused
    seen = []
    record = LambdaCallback(on_train_batch_end=lambda b, logs: seen.append((b, logs["loss"])))
    model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0,
              callbacks=[record, TerminateOnNaN()])
    assert [b for b, _ in seen] == [0, 1, 2, 3]
    assert [l for _, l in seen[:3]] == [float(np.float32(3.1249999e36))] * 3
    assert math.isinf(seen[3][1])
    assert capsys.readouterr().out.endswith("Batch 3: Invalid loss, terminating training\n")


# ====================================================================== LambdaCallback
def test_lambda_callback():
    calls = []
    cb = LambdaCallback(on_train_begin=lambda logs: calls.append("train_begin"),
                        on_epoch_begin=lambda epoch, logs: calls.append(("begin", epoch)),
                        on_epoch_end=lambda epoch, logs: calls.append(("end", epoch,
                                                                       logs["loss"])),
                        on_train_end=lambda logs: calls.append("train_end"),
                        on_test_end=lambda logs: calls.append(("test_end", logs["loss"])))
    assert not cb.needs_batch_hooks()
    fake_fit(FakeModel(), 2, [0.7, 0.6], [cb])
    assert calls == ["train_begin", ("begin", 0), ("test_end", 0.7), ("end", 0, 1.0),
                     ("begin", 1), ("test_end", 0.6), ("end", 1, 0.5), "train_end"]
    assert LambdaCallback(on_train_batch_begin=lambda b, logs: None).needs_batch_hooks()
    with pytest.raises(TypeError, match="unknown hook"):
        LambdaCallback(on_epoch_ends=print)
    with pytest.raises(TypeError, match="callable"):
        LambdaCallback(on_epoch_end=3)


# ====================================================================== mixing
def test_lr_and_history_and_early_stopping_together():
    model = FakeModel(0.1)
    es = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    h = fake_fit(model, 10, [1.0, 0.8, 0.9, 0.9, 0.9, 0.9],
                 [ReduceLROnPlateau(patience=1, factor=0.5), es])
    assert h.epoch == [0, 1, 2, 3, 4]
    # recorded before the epoch-end reduction: reductions at epochs 3 and 4 (1-based)
    assert h.history["learning_rate"] == [0.1, 0.1, 0.1, 0.05, 0.025]
    assert model.value == 2.0


def test_no_warnings_in_a_clean_run(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fake_fit(FakeModel(), 3, [1.0, 0.9, 0.8],
                 [EarlyStopping(), ModelCheckpoint(str(tmp_path / "m.npz"), save_best_only=True),
                  ReduceLROnPlateau(), CSVLogger(tmp_path / "l.csv")])
