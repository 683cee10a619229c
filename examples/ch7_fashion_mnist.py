"""7장 따라하기 / Chapter 7 walkthrough: deep learning on Fashion-MNIST.

The textbook's chapter 7 (7-1 artificial neural network, 7-2 deep neural
network, 7-3 training a neural network) written for nncore.  The only change a
Keras script needs is the import line::

    import nncore as keras          # instead of: from tensorflow import keras

(the checkpoint is the book's ``best-model.keras``, a Keras 3 file that
TensorFlow's Keras loads too).

Environment variables (used by the test suite to run this on a slice):

    NNCORE_EXAMPLE_SAMPLES   use only the first N training images (default: all 60,000)
    NNCORE_EXAMPLE_EPOCHS    epochs for every fit (default: the book's 5 / 20)
    NNCORE_EXAMPLE_VERBOSE   fit/evaluate verbosity (default 1: progress bars)
    NNCORE_EXAMPLE_OUT       folder for the files it saves (default: a new
                             temporary folder; never the current folder)

Run:  python examples/ch7_fashion_mnist.py
(the same chapter cell by cell, as a notebook: examples/chapter7.ipynb)
"""
import os
import tempfile

import numpy as np

import nncore as keras

SAMPLES = int(os.environ.get("NNCORE_EXAMPLE_SAMPLES", "0")) or None
EPOCHS = int(os.environ.get("NNCORE_EXAMPLE_EPOCHS", "0")) or None
VERBOSE = int(os.environ.get("NNCORE_EXAMPLE_VERBOSE", "1"))
# Saved models and plots go here, not into the folder the script is run from
# (running it from a checkout must not leave files in the repository).
OUT = os.environ.get("NNCORE_EXAMPLE_OUT") or tempfile.mkdtemp(prefix="nncore-ch7-")
os.makedirs(OUT, exist_ok=True)
print("saving files to", OUT)


def epochs(book_value):
    return EPOCHS or book_value


keras.utils.set_random_seed(42)

# --------------------------------------------------------------- the data
(train_input, train_target), (test_input, test_target) = \
    keras.datasets.fashion_mnist.load_data()
if SAMPLES:
    train_input, train_target = train_input[:SAMPLES], train_target[:SAMPLES]
    n_test = min(len(test_input), max(500, SAMPLES // 2))
    test_input, test_target = test_input[:n_test], test_target[:n_test]
print("train:", train_input.shape, train_target.shape, " test:", test_input.shape)

# pixel values 0..255 -> 0..1
train_scaled = train_input / 255.0
test_scaled = test_input / 255.0

# hold out 20% of the training set for validation (the book uses
# train_test_split; here: a fixed random permutation, no scikit-learn needed)
order = np.random.default_rng(42).permutation(len(train_scaled))
n_val = len(order) // 5
val_idx, train_idx = order[:n_val], order[n_val:]
train_scaled, val_scaled = train_scaled[train_idx], train_scaled[val_idx]
train_target, val_target = train_target[train_idx], train_target[val_idx]
print("train split:", train_scaled.shape, " validation split:", val_scaled.shape)


def report(tag, model, x, y, what):
    loss, acc = model.evaluate(x, y, verbose=VERBOSE)
    print(f"[{tag}] {what} loss: {loss:.4f}  {what} accuracy: {acc:.4f}")
    return acc


# --------------------------------------------------------------- 7-1
# One layer: 784 pixels -> 10 class scores -> softmax (= multinomial logistic
# regression, trained by gradient descent).
print("\n=== 7-1 artificial neural network: Flatten -> Dense(10, softmax) ===")
model = keras.Sequential([
    keras.Input(shape=(28, 28)),
    keras.layers.Flatten(),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(train_scaled, train_target, epochs=epochs(5), verbose=VERBOSE)
report("7-1", model, val_scaled, val_target, "validation")
report("7-1", model, test_scaled, test_target, "test")

# --------------------------------------------------------------- 7-2
# A hidden layer of 100 ReLU units between the pixels and the output.
print("\n=== 7-2 deep neural network: Flatten -> Dense(100, relu) -> Dense(10, softmax) ===")
model = keras.Sequential([
    keras.Input(shape=(28, 28)),
    keras.layers.Flatten(),
    keras.layers.Dense(100, activation="relu", name="hidden"),
    keras.layers.Dense(10, activation="softmax", name="output"),
], name="fashion_mnist_model")
model.summary()
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(train_scaled, train_target, epochs=epochs(5), verbose=VERBOSE)
report("7-2 rmsprop", model, val_scaled, val_target, "validation")

# Other optimizers, by name or as objects with their hyper-parameters:
#   model.compile(optimizer="sgd", ...)
#   sgd = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
#   adagrad = keras.optimizers.Adagrad()
#   rmsprop = keras.optimizers.RMSprop()
# Adam, the usual first choice:
model = keras.Sequential([
    keras.Input(shape=(28, 28)),
    keras.layers.Flatten(),
    keras.layers.Dense(100, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(train_scaled, train_target, epochs=epochs(5), verbose=VERBOSE)
report("7-2 adam", model, val_scaled, val_target, "validation")
report("7-2 adam", model, test_scaled, test_target, "test")


# --------------------------------------------------------------- 7-3
print("\n=== 7-3 training: validation loss, dropout, checkpoint, early stopping ===")


def model_fn(a_layer=None):
    """Flatten -> Dense(100, relu) [-> a_layer] -> Dense(10, softmax)."""
    model = keras.Sequential()
    model.add(keras.Input(shape=(28, 28)))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(100, activation="relu"))
    if a_layer is not None:
        model.add(a_layer)
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model


# Dropout(0.3): while training, each hidden unit is silenced with probability
# 0.3 (and the others scaled by 1/0.7), so no unit can be relied on alone.
model = model_fn(keras.layers.Dropout(0.3))
model.summary()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
best_path = os.path.join(OUT, "best-model.keras")
checkpoint_cb = keras.callbacks.ModelCheckpoint(best_path, save_best_only=True)
early_stopping_cb = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
history = model.fit(train_scaled, train_target, epochs=epochs(20), verbose=VERBOSE,
                    validation_data=(val_scaled, val_target),
                    callbacks=[checkpoint_cb, early_stopping_cb])
print("history keys:", sorted(history.history))
print("epochs run:", len(history.history["loss"]),
      " early stopping at epoch:", early_stopping_cb.stopped_epoch)
for e, (tl, vl) in enumerate(zip(history.history["loss"], history.history["val_loss"]), 1):
    print(f"  epoch {e:2d}  loss {tl:.4f}  val_loss {vl:.4f}")

try:
    import matplotlib
    matplotlib.use("Agg")
except ImportError:
    print("(matplotlib is not installed: skipping the loss plot)")
else:
    fig = keras.utils.plot_history(history, metrics=("loss", "accuracy"))
    fig.savefig(os.path.join(OUT, "ch7_loss_curves.png"))
    print("loss curves saved to", os.path.join(OUT, "ch7_loss_curves.png"))

report("7-3 dropout", model, val_scaled, val_target, "validation")

# The best model (lowest val_loss) was saved by the checkpoint callback.
model = keras.models.load_model(best_path)
report("7-3 best-model.keras", model, val_scaled, val_target, "validation")

# Predictions: class probabilities -> the most likely class.
classes = keras.datasets.fashion_mnist.CLASS_NAMES
probs = model.predict(test_scaled[:5], verbose=0)
for p, t in zip(probs, test_target[:5]):
    print(f"  predicted {classes[int(np.argmax(p))]:12s} (p={p.max():.2f})  true {classes[int(t)]}")
report("7-3 final", model, test_scaled, test_target, "test")
