"""The chapter-7 notebook and its markdown page, from one list of cells.

    python docs/chapter7_cells.py        # writes examples/chapter7.ipynb and docs/chapter7_walkthrough.md

``tests/test_notebook.py`` executes the notebook and checks that both files
are what this script writes, so the page can never drift from code that runs.
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "chapter7.ipynb"
MARKDOWN = ROOT / "docs" / "chapter7_walkthrough.md"

CELLS = [
("md", """# 7장 따라하기 / Chapter 7 walkthrough

*딥러닝 교과서 7장(인공 신경망 → 심층 신경망 → 신경망 모델 훈련)을 nncore로 따라
합니다. / The textbook's chapter 7 — artificial neural network, deep neural
network, training a neural network — with nncore, cell by cell.*

The Keras code of the book with one changed line, the import, and one changed
file name: models are saved as `.npz` files, not `.keras`.

This page is generated from the notebook
[`examples/chapter7.ipynb`](../examples/chapter7.ipynb) (by
`docs/chapter7_cells.py`), which the test suite executes: every block below
runs, in this order.

**Size.** So that the whole chapter runs in well under a minute (it is part of
the test suite), the notebook trains on the first 12,000 of the 60,000
training images; the epochs are the book's. Set `N_TRAIN = None` for the full
set (the accuracies then come out about 1–2 points higher).

**Files.** Everything the notebook saves goes into a fresh temporary folder
`OUT` (or the folder named by `$NNCORE_NOTEBOOK_OUT`), never into the folder
you start Jupyter from."""),
("code", """import os
import tempfile

import numpy as np
import matplotlib.pyplot as plt

import nncore as keras          # 원래는 / instead of: from tensorflow import keras

N_TRAIN = 12_000                # the book: all 60,000 (set None)
OUT = os.environ.get("NNCORE_NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="nncore-ch7-")
print("files go to", OUT)
keras.utils.set_random_seed(42)"""),
("md", """## 7-1 인공 신경망 / An artificial neural network

### 패션 MNIST / The data

`load_data()` returns the same arrays as Keras: 60,000 training and 10,000
test images of 28×28 `uint8` pixels, labels 0–9 (티셔츠, 바지, 스웨터, 드레스,
코트, 샌달, 셔츠, 스니커즈, 가방, 앵클 부츠). It reads the files from
`$NNCORE_DATA_DIR` or `~/.nncore/datasets/`, downloading them (with SHA-256
checks) otherwise."""),
("code", """(train_input, train_target), (test_input, test_target) = \\
    keras.datasets.fashion_mnist.load_data()
print(train_input.shape, train_target.shape)
print(test_input.shape, test_target.shape)
if N_TRAIN:
    train_input, train_target = train_input[:N_TRAIN], train_target[:N_TRAIN]"""),
("code", """fig, axs = plt.subplots(1, 10, figsize=(10, 10))
for i in range(10):
    axs[i].imshow(train_input[i], cmap="gray_r")
    axs[i].axis("off")
plt.show()
print([int(t) for t in train_target[:10]])
print(np.unique(train_target, return_counts=True))"""),
("md", """### 검증 세트 / A validation set

Pixels are scaled to 0..1, and 20% of the training images are held out to
measure the model on images it was not trained on. The book uses
scikit-learn's `train_test_split`; without scikit-learn the same kind of
random split is made with NumPy."""),
("code", """train_scaled = train_input / 255.0
test_scaled = test_input / 255.0
try:
    from sklearn.model_selection import train_test_split
except ImportError:             # scikit-learn not installed: the same split with NumPy
    def train_test_split(x, y, test_size, random_state):
        order = np.random.default_rng(random_state).permutation(len(x))
        n_test = int(round(len(x) * test_size))
        return x[order[n_test:]], x[order[:n_test]], y[order[n_test:]], y[order[:n_test]]

train_scaled, val_scaled, train_target, val_target = train_test_split(
    train_scaled, train_target, test_size=0.2, random_state=42)
print(train_scaled.shape, train_target.shape)
print(val_scaled.shape, val_target.shape)"""),
("md", """### 인공 신경망 / The model

One `Dense` layer: `z = x·W + b` with 784 × 10 + 10 = 7,850 parameters;
softmax turns the 10 scores into probabilities, and
`sparse_categorical_crossentropy` takes the integer labels directly. The
book flattens the images first, `reshape(-1, 28*28)`."""),
("code", """train_flat = train_scaled.reshape(-1, 28 * 28)
val_flat = val_scaled.reshape(-1, 28 * 28)

inputs = keras.Input(shape=(784,))
dense = keras.layers.Dense(10, activation="softmax")
model = keras.Sequential([inputs, dense])
model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_flat, train_target, epochs=5)"""),
("code", """model.evaluate(val_flat, val_target)"""),
("md", """*What happens in one step?* — the forward pass is one matrix product, the
loss gradient is `(p − y)/n` ([why](softmax_crossentropy.md)), the backward
pass is `dW = xᵀ·dz` ([the three GEMMs](dense_layer.md)), and RMSprop (the
default optimizer) updates `W` and `b` ([the rule](optimizers.md)). See it
for yourself:"""),
("code", """print(keras.utils.trace(model, train_flat[:32], train_target[:32]))"""),
("md", """## 7-2 심층 신경망 / A deep neural network

### 은닉층 / A hidden layer

A hidden layer of 100 sigmoid units between the pixels and the output:
78,500 + 1,010 = 79,510 parameters (the `summary()` table)."""),
("code", """dense1 = keras.layers.Dense(100, activation="sigmoid")
dense2 = keras.layers.Dense(10, activation="softmax")
model = keras.Sequential([keras.Input(shape=(784,)), dense1, dense2])
model.summary()"""),
("code", """model = keras.Sequential([
    keras.Input(shape=(784,)),
    keras.layers.Dense(100, activation="sigmoid", name="은닉층"),
    keras.layers.Dense(10, activation="softmax", name="출력층"),
], name="패션_MNIST_모델")
model.summary()"""),
("code", """model = keras.Sequential()
model.add(keras.Input(shape=(784,)))
model.add(keras.layers.Dense(100, activation="sigmoid"))
model.add(keras.layers.Dense(10, activation="softmax"))
model.summary()"""),
("code", """model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_flat, train_target, epochs=5)"""),
("md", """### 렐루 함수와 Flatten / ReLU and Flatten

ReLU (`max(z, 0)`) passes gradients through unchanged where a unit is active
and blocks them where it is not, which keeps deep networks trainable where
sigmoids saturate. `Flatten` does the `reshape` inside the model, so the
28×28 images go in as they are."""),
("code", """model = keras.Sequential()
model.add(keras.Input(shape=(28, 28)))
model.add(keras.layers.Flatten())
model.add(keras.layers.Dense(100, activation="relu"))
model.add(keras.layers.Dense(10, activation="softmax"))
model.summary()"""),
("code", """model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_scaled, train_target, epochs=5)
model.evaluate(val_scaled, val_target)"""),
("md", """### 옵티마이저 / Optimizers

By name with Keras's defaults, or as objects with their hyper-parameters
(the update rules: [optimizers](optimizers.md))."""),
("code", """model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
sgd = keras.optimizers.SGD()
model.compile(optimizer=sgd, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
sgd = keras.optimizers.SGD(learning_rate=0.1)
sgd = keras.optimizers.SGD(momentum=0.9, nesterov=True)
adagrad = keras.optimizers.Adagrad()
model.compile(optimizer=adagrad, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
rmsprop = keras.optimizers.RMSprop()
model.compile(optimizer=rmsprop, loss="sparse_categorical_crossentropy", metrics=["accuracy"])"""),
("code", """model = keras.Sequential([
    keras.Input(shape=(28, 28)),
    keras.layers.Flatten(),
    keras.layers.Dense(100, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_scaled, train_target, epochs=5)
model.evaluate(val_scaled, val_target)"""),
("md", """## 7-3 신경망 모델 훈련 / Training a neural network

### 손실 곡선 / Loss curves

`fit` returns a `History`; `history.history` has one value per epoch for
the loss and each metric."""),
("code", """def model_fn(a_layer=None):
    model = keras.Sequential()
    model.add(keras.Input(shape=(28, 28)))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(100, activation="relu"))
    if a_layer:
        model.add(a_layer)
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model


model = model_fn()
model.summary()
model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train_scaled, train_target, epochs=5, verbose=0)
print(history.history.keys())"""),
("code", """plt.plot(history.history["loss"])
plt.xlabel("epoch")
plt.ylabel("loss")
plt.show()
plt.plot(history.history["accuracy"])
plt.xlabel("epoch")
plt.ylabel("accuracy")
plt.show()"""),
("code", """model = model_fn()
model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train_scaled, train_target, epochs=20, verbose=0)
plt.plot(history.history["loss"])
plt.xlabel("epoch")
plt.ylabel("loss")
plt.show()"""),
("md", """### 검증 손실 / Validation loss

When the training loss keeps falling but `val_loss` turns up, the model has
started to memorise the training set (과대적합 / overfitting). Adam keeps it
in check longer than RMSprop here."""),
("code", """model = model_fn()
model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train_scaled, train_target, epochs=20, verbose=0,
                    validation_data=(val_scaled, val_target))
print(history.history.keys())
plt.plot(history.history["loss"])
plt.plot(history.history["val_loss"])
plt.xlabel("epoch")
plt.ylabel("loss")
plt.legend(["train", "val"])
plt.show()"""),
("code", """model = model_fn()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train_scaled, train_target, epochs=20, verbose=0,
                    validation_data=(val_scaled, val_target))
fig = keras.utils.plot_history(history, metrics=("loss", "accuracy"))
fig.savefig(os.path.join(OUT, "adam_curves.png"))
plt.show()"""),
("md", """### 드롭아웃 / Dropout

While training, each of the 100 hidden outputs is zeroed with probability
0.3 and the survivors are scaled by 1/0.7, so the expected value is
unchanged and `evaluate`/`predict` need no correction (드롭아웃은 훈련할 때만
적용됩니다 / dropout is only active in training). nncore's masks come from a
counter-based generator keyed by (seed, step, element): the same seed gives
the same masks with any number of threads and in both backends."""),
("code", """model = model_fn(keras.layers.Dropout(0.3))
model.summary()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train_scaled, train_target, epochs=20, verbose=0,
                    validation_data=(val_scaled, val_target))
plt.plot(history.history["loss"])
plt.plot(history.history["val_loss"])
plt.xlabel("epoch")
plt.ylabel("loss")
plt.legend(["train", "val"])
plt.show()"""),
("md", """### 모델 저장과 복원 / Saving and loading

`save_weights` keeps the weights, `save` the whole model (architecture,
weights, optimizer state), both as `.npz` files (never pickle);
`load_weights` and `keras.models.load_model` read them back."""),
("code", """model = model_fn(keras.layers.Dropout(0.3))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train_scaled, train_target, epochs=10, verbose=0,
                    validation_data=(val_scaled, val_target))
model.save_weights(os.path.join(OUT, "model.weights.npz"))
model.save(os.path.join(OUT, "model-whole.npz"))
print(sorted(os.listdir(OUT)))"""),
("code", """model = model_fn(keras.layers.Dropout(0.3))
model.load_weights(os.path.join(OUT, "model.weights.npz"))
val_labels = np.argmax(model.predict(val_scaled), axis=-1)
print(np.mean(val_labels == val_target))"""),
("code", """model = keras.models.load_model(os.path.join(OUT, "model-whole.npz"))
model.evaluate(val_scaled, val_target)"""),
("md", """### 콜백 / Callbacks

`ModelCheckpoint` saves the model whenever `val_loss` reaches a new best;
`EarlyStopping` stops after 2 epochs without improvement and puts the best
weights back."""),
("code", """model = model_fn(keras.layers.Dropout(0.3))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
checkpoint_cb = keras.callbacks.ModelCheckpoint(os.path.join(OUT, "best-model.npz"),
                                                save_best_only=True)
model.fit(train_scaled, train_target, epochs=20, verbose=0,
          validation_data=(val_scaled, val_target), callbacks=[checkpoint_cb])
model = keras.models.load_model(os.path.join(OUT, "best-model.npz"))
model.evaluate(val_scaled, val_target)"""),
("code", """model = model_fn(keras.layers.Dropout(0.3))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
checkpoint_cb = keras.callbacks.ModelCheckpoint(os.path.join(OUT, "best-model.npz"),
                                                save_best_only=True)
early_stopping_cb = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
history = model.fit(train_scaled, train_target, epochs=20, verbose=0,
                    validation_data=(val_scaled, val_target),
                    callbacks=[checkpoint_cb, early_stopping_cb])
print(early_stopping_cb.stopped_epoch)"""),
("code", """plt.plot(history.history["loss"])
plt.plot(history.history["val_loss"])
plt.xlabel("epoch")
plt.ylabel("loss")
plt.legend(["train", "val"])
plt.show()
model.evaluate(val_scaled, val_target)"""),
("md", """### 예측 / Predictions

`predict` takes a batch: for one image use `test_scaled[:1]` (or
`test_scaled[0][None]`), not `test_scaled[0]`."""),
("code", """classes = keras.datasets.fashion_mnist.CLASS_NAMES
probs = model.predict(test_scaled[:5])
for p, t in zip(probs, test_target[:5]):
    print(f"predicted {classes[int(np.argmax(p))]:12s} (p={p.max():.2f})  true {classes[int(t)]}")
test_loss, test_accuracy = model.evaluate(test_scaled, test_target)
print(f"test accuracy: {test_accuracy:.4f}")"""),
("md", """## 더 들여다보기 / Looking inside

* `python examples/walkthrough_backprop.py` trains the 784 → 100 → 10 network
  *by hand* — `layer.forward`, the `p − y` gradient in NumPy,
  `layer.backward`, `optimizer.apply(grads, variables)` — and shows that it
  ends with the same weights as `fit(shuffle=False)`.
* `keras.utils.gradient_check(model, x[:16], y[:16], max_checks_per_weight=50)`
  confirms every gradient against finite differences.
* `keras.backend.set_backend("numpy")` runs everything through the readable
  NumPy twins ([kernels and twins](kernels_and_twins.md)); the results are the
  same.
* `examples/ch7_fashion_mnist.py` is the same chapter as one script."""),
]


def notebook_json():
    """The notebook (nbformat 4, no outputs) as JSON text."""
    cells = []
    for kind, text in CELLS:
        lines = text.split("\n")
        source = [l + "\n" for l in lines[:-1]] + [lines[-1]]
        cell = {"cell_type": "markdown" if kind == "md" else "code", "metadata": {},
                "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    nb = {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"ch7-{i:02d}"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def markdown_text():
    """The walkthrough page: markdown cells as they are, code cells as python blocks."""
    parts = []
    for kind, text in CELLS:
        parts.append(text if kind == "md" else f"```python\n{text}\n```")
    return "\n\n".join(parts) + "\n"


def _write(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)                     # atomic


if __name__ == "__main__":
    _write(NOTEBOOK, notebook_json())
    _write(MARKDOWN, markdown_text())
    print("wrote", NOTEBOOK, "and", MARKDOWN)
