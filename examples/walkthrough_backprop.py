"""Backpropagation by hand / 역전파 직접 해 보기.

Trains a 784 -> 100 (relu) -> 10 (softmax) network on Fashion-MNIST twice:

1. by hand, with nothing but the layers' own ``forward`` / ``backward`` and
   the optimizer's ``apply(grads, variables)``: the training loop of
   ``fit`` written out in a dozen lines;
2. with ``model.fit(..., shuffle=False)``, from the same initial weights on the
   same batches,

and prints the largest difference between the two sets of trained weights
(0, or float32 rounding: the loss gradient below is written in NumPy,
``fit`` computes it in a compiled kernel).

Environment variables: NNCORE_EXAMPLE_SAMPLES (default 6000 images),
NNCORE_EXAMPLE_EPOCHS (default 2).
"""
import os

import numpy as np

import nncore as keras

SAMPLES = int(os.environ.get("NNCORE_EXAMPLE_SAMPLES", "0")) or 6000
EPOCHS = int(os.environ.get("NNCORE_EXAMPLE_EPOCHS", "0")) or 2
BATCH = 32

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x = (x_train[:SAMPLES].reshape(-1, 784) / 255.0).astype("float32")
y = y_train[:SAMPLES].astype("int32")
x_test = (x_test[:2000].reshape(-1, 784) / 255.0).astype("float32")
y_test = y_test[:2000]


def make_model():
    keras.utils.set_random_seed(7)          # same seed -> same initial weights
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


# ------------------------------------------------------------------ 1. by hand
model = make_model()
hidden, output = model.layers
optimizer = keras.optimizers.Adam()          # the same defaults as optimizer="adam"
variables = hidden.weights + output.weights  # [W1, b1, W2, b2]

print(f"training 784-100-10 by hand: {len(x)} images, {EPOCHS} epochs, batch {BATCH}")
for epoch in range(EPOCHS):
    total = 0.0
    for start in range(0, len(x), BATCH):
        xb, yb = x[start:start + BATCH], y[start:start + BATCH]
        n = len(xb)

        # forward: a1 = relu(x.W1 + b1);  z = a1.W2 + b2 (the logits: softmax is
        # left to the loss, which is how Keras computes softmax + cross-entropy)
        a1 = hidden.forward(xb, training=True)
        z = output.forward(a1, training=True, logits=True)

        # loss and its gradient w.r.t. the logits: the famous p - y
        z64 = z.astype(np.float64)
        e = np.exp(z64 - z64.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        total += -np.log(p[np.arange(n), yb]).sum()
        dz = p
        dz[np.arange(n), yb] -= 1.0
        dz = (dz / n).astype(np.float32)      # the mean over the batch -> / n

        # backward: each layer fills its .grads = [dW, db] and returns dL/dx
        da1 = output.backward(dz, from_logits=True)   # dW2 = a1^T.dz, dx = dz.W2^T
        hidden.backward(da1, need_input_grad=False)   # relu', dW1 = x^T.dz1

        # update: one optimizer step on every weight
        optimizer.apply(hidden.grads + output.grads, variables)
    print(f"  epoch {epoch + 1}: mean loss {total / len(x):.4f}")
by_hand = model.get_weights()
_, acc_hand = model.evaluate(x_test, y_test, verbose=0)

# ------------------------------------------------------------------ 2. fit
model = make_model()
model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
with_fit = model.get_weights()
_, acc_fit = model.evaluate(x_test, y_test, verbose=0)

diff = max(float(np.abs(a - b).max()) for a, b in zip(by_hand, with_fit))
scale = max(float(np.abs(b).max()) for b in with_fit)
print(f"by hand: test accuracy: {acc_hand:.4f}")
print(f"fit:     test accuracy: {acc_fit:.4f}")
print(f"max |weight difference| between the two: {diff:.3g} (largest weight {scale:.3g})")
if diff > 1e-3 * scale:
    raise SystemExit("the hand-written loop and fit() disagree")
print("the hand-written loop and fit() train the same network")
