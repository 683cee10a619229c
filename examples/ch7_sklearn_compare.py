"""Chapter 7's comparison, both sides in scikit-learn: SGDClassifier vs nncore.

Chapter 7-1 of the textbook first scores a logistic-regression
``SGDClassifier`` on Fashion-MNIST with ``cross_validate`` and then trains
the same kind of model (784 pixels -> Dense(10, softmax)) as a neural
network.  With ``nncore.wrappers.SKLearnClassifier`` the network goes
through the very same ``cross_validate`` call, so the two scores are
measured the same way (5 folds, ``n_jobs=-1``: one fold per core).

Environment variables (used by the test suite to run this on a slice):

    NNCORE_EXAMPLE_SAMPLES   use only the first N training images (default: all 60,000)
    NNCORE_EXAMPLE_EPOCHS    epochs for the network (default: the book's 5)

Nothing is written to the current folder (joblib and nncore's model
transport use the system's temporary folder).

Run:  python examples/ch7_sklearn_compare.py
"""
import os
import time

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import cross_validate

import nncore as keras
from nncore.wrappers import SKLearnClassifier

SAMPLES = int(os.environ.get("NNCORE_EXAMPLE_SAMPLES", "0")) or None
EPOCHS = int(os.environ.get("NNCORE_EXAMPLE_EPOCHS", "0")) or 5

(train_input, train_target), _ = keras.datasets.fashion_mnist.load_data()
if SAMPLES:
    train_input, train_target = train_input[:SAMPLES], train_target[:SAMPLES]

# the book: pixels 0..255 -> 0..1, each image flattened to 784 features
train_scaled = train_input / 255.0
train_scaled = train_scaled.reshape(-1, 28 * 28)
print("data:", train_scaled.shape, train_target.shape)

# --------------------------------------------------------------- scikit-learn
t0 = time.perf_counter()
sc = SGDClassifier(loss="log_loss", max_iter=5, random_state=42)
scores = cross_validate(sc, train_scaled, train_target, n_jobs=-1)
sgd_score = np.mean(scores["test_score"])
print(f"SGDClassifier(loss='log_loss', max_iter=5) mean test accuracy: {sgd_score:.4f}"
      f"  ({time.perf_counter() - t0:.1f} s)")


# --------------------------------------------------------------- nncore
def model_fn(X, y):
    """The book's 7-1 network: 784 -> Dense(10, softmax), RMSprop (Keras's
    default optimizer), sparse categorical cross-entropy."""
    model = keras.Sequential([
        keras.Input(shape=(X.shape[1],)),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


t0 = time.perf_counter()
nn = SKLearnClassifier(model_fn, fit_kwargs={"epochs": EPOCHS}, random_state=42)
scores = cross_validate(nn, train_scaled, train_target, n_jobs=-1)
nn_score = np.mean(scores["test_score"])
print(f"SKLearnClassifier(model_fn), {EPOCHS} epochs, mean test accuracy: {nn_score:.4f}"
      f"  ({time.perf_counter() - t0:.1f} s)")
