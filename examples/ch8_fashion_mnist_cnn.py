"""8장 따라하기 / Chapter 8 walkthrough: a convolutional network on Fashion-MNIST.

The textbook's chapter 8 (8-2 image classification with a CNN, 8-3 looking
at its filters and feature maps), with the book's own code and file names;
the only change is the import line::

    import nncore as keras          # instead of: from tensorflow import keras

The ``.keras`` checkpoint needs h5py (``pip install h5py``).

What it saves (into the output folder only): ``best-cnn-model.keras``; the
8-2 pictures of the model (``model.png``, ``cnn-architecture.png``) and loss
curves ``ch8_loss_curves.png``; for 8-3 the first layer's weight histogram
and 32 filters (``ch8_filter_histogram.png``, ``ch8_filters.png``), the same
for an untrained layer (``ch8_untrained_histogram.png``,
``ch8_untrained_filters.png``), the input image (``ch8_input_image.png``) and
the feature maps of both convolutions (``ch8_feature_maps.png``,
``ch8_feature_maps2.png``).  Without matplotlib it skips the figures.
The page ``docs/chapter8_walkthrough.md`` explains what each layer computes.

Environment variables (used by the test suite to run this on a slice):

    NNCORE_EXAMPLE_SAMPLES   use only the first N training images (default: all 60,000)
    NNCORE_EXAMPLE_EPOCHS    epochs (default: the book's 20, with early stopping)
    NNCORE_EXAMPLE_VERBOSE   fit/evaluate verbosity (default 1: progress bars)
    NNCORE_EXAMPLE_OUT       folder for the files it saves (default: a new
                             temporary folder; never the current folder)

Run:  python examples/ch8_fashion_mnist_cnn.py
"""
import os
import tempfile

import numpy as np

import nncore as keras

SAMPLES = int(os.environ.get("NNCORE_EXAMPLE_SAMPLES", "0")) or None
EPOCHS = int(os.environ.get("NNCORE_EXAMPLE_EPOCHS", "0")) or 20
VERBOSE = int(os.environ.get("NNCORE_EXAMPLE_VERBOSE", "1"))
OUT = os.environ.get("NNCORE_EXAMPLE_OUT") or tempfile.mkdtemp(prefix="nncore-ch8-")
os.makedirs(OUT, exist_ok=True)
print("saving files to", OUT)
keras.utils.set_random_seed(42)

# ------------------------------------------------------------ 8-2: the data
(train_input, train_target), (test_input, test_target) = \
    keras.datasets.fashion_mnist.load_data()
if SAMPLES:
    train_input, train_target = train_input[:SAMPLES], train_target[:SAMPLES]
    test_input, test_target = test_input[:max(500, SAMPLES // 4)], test_target[:max(500, SAMPLES // 4)]
train_scaled = train_input.reshape(-1, 28, 28, 1) / 255.0
# the book's train_test_split(test_size=0.2, random_state=42), without scikit-learn
order = np.random.default_rng(42).permutation(len(train_scaled))
cut = int(len(order) * 0.8)
train_scaled, val_scaled = train_scaled[order[:cut]], train_scaled[order[cut:]]
train_target, val_target = train_target[order[:cut]], train_target[order[cut:]]

# ------------------------------------------------------------ 8-2: the model
model = keras.Sequential()
model.add(keras.layers.Conv2D(32, kernel_size=3, activation='relu', padding='same',
                              input_shape=(28, 28, 1)))
model.add(keras.layers.MaxPooling2D(2))
model.add(keras.layers.Conv2D(64, kernel_size=(3, 3), activation='relu', padding='same'))
model.add(keras.layers.MaxPooling2D(2))
model.add(keras.layers.Flatten())
model.add(keras.layers.Dense(100, activation='relu'))
model.add(keras.layers.Dropout(0.4))
model.add(keras.layers.Dense(10, activation='softmax'))
model.summary()

# the book's two pictures of the model (Graphviz with pydot installed, else matplotlib)
try:
    keras.utils.plot_model(model, to_file=os.path.join(OUT, 'model.png'))
    keras.utils.plot_model(model, show_shapes=True,
                           to_file=os.path.join(OUT, 'cnn-architecture.png'), dpi=300)
except ImportError as e:          # neither matplotlib nor pydot + Graphviz
    print("[8-2] no picture of the model:", e)

model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
checkpoint_cb = keras.callbacks.ModelCheckpoint(os.path.join(OUT, 'best-cnn-model.keras'),
                                                save_best_only=True)
early_stopping_cb = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
history = model.fit(train_scaled, train_target, epochs=EPOCHS, verbose=VERBOSE,
                    validation_data=(val_scaled, val_target),
                    callbacks=[checkpoint_cb, early_stopping_cb])
print("[8-2] stopped after", len(history.history["loss"]), "epochs")

val_loss, val_acc = model.evaluate(val_scaled, val_target, verbose=VERBOSE)
print(f"[8-2] validation accuracy: {val_acc:.4f}")
test_scaled = test_input.reshape(-1, 28, 28, 1) / 255.0
test_loss, test_acc = model.evaluate(test_scaled, test_target, verbose=VERBOSE)
print(f"[8-2] test accuracy: {test_acc:.4f}")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:           # plots are optional
    plt = None
if plt is not None:
    plt.plot(history.history['loss'])
    plt.plot(history.history['val_loss'])
    plt.xlabel('epoch')
    plt.ylabel('loss')
    plt.legend(['train', 'val'])
    plt.savefig(os.path.join(OUT, "ch8_loss_curves.png"))
    plt.close()

# ------------------------------------------------------------ 8-3: inside the model
model = keras.models.load_model(os.path.join(OUT, 'best-cnn-model.keras'))
conv = model.layers[0]
print("[8-3] first filters:", conv.weights[0].shape, conv.weights[1].shape)
conv_weights = conv.weights[0].numpy()
print(f"[8-3] filter weights: mean {conv_weights.mean():.4f}, std {conv_weights.std():.4f}")
if plt is not None:
    # all 288 weights of the 32 filters in one histogram: training spreads
    # them out from the narrow band the initializer drew them in
    plt.hist(conv_weights.reshape(-1, 1))
    plt.xlabel('weight')
    plt.ylabel('count')
    plt.savefig(os.path.join(OUT, "ch8_filter_histogram.png"))
    plt.close()
    # one 3x3 picture per filter; the fixed colour range (vmin/vmax) lets
    # the pictures be compared with each other and with the untrained ones
    fig, axs = plt.subplots(2, 16, figsize=(15, 2))
    for i in range(2):
        for j in range(16):
            axs[i, j].imshow(conv_weights[:, :, 0, i * 16 + j], vmin=-0.5, vmax=0.5)
            axs[i, j].axis('off')
    plt.savefig(os.path.join(OUT, "ch8_filters.png"))
    plt.close()

# the same first layer, never trained: what the filters looked like before fit
no_training_model = keras.Sequential()
no_training_model.add(keras.layers.Conv2D(32, kernel_size=3, activation='relu',
                                          padding='same', input_shape=(28, 28, 1)))
no_training_conv = no_training_model.layers[0]
print("[8-3] untrained filters:", no_training_conv.weights[0].shape)
no_training_weights = no_training_conv.weights[0].numpy()
print(f"[8-3] untrained filter weights: mean {no_training_weights.mean():.4f}, "
      f"std {no_training_weights.std():.4f}")
if plt is not None:
    plt.hist(no_training_weights.reshape(-1, 1))
    plt.xlabel('weight')
    plt.ylabel('count')
    plt.savefig(os.path.join(OUT, "ch8_untrained_histogram.png"))
    plt.close()
    fig, axs = plt.subplots(2, 16, figsize=(15, 2))
    for i in range(2):
        for j in range(16):
            axs[i, j].imshow(no_training_weights[:, :, 0, i * 16 + j], vmin=-0.5, vmax=0.5)
            axs[i, j].axis('off')
    plt.savefig(os.path.join(OUT, "ch8_untrained_filters.png"))
    plt.close()

# functional API: a model from the same input to an inner layer's output
conv_acti = keras.Model(model.inputs[0], model.layers[0].output)
inputs = train_input[0:1].reshape(-1, 28, 28, 1) / 255.0
feature_maps = conv_acti.predict(inputs, verbose=0)
print("[8-3] feature maps of layer 0:", feature_maps.shape)
conv2_acti = keras.Model(model.inputs[0], model.layers[2].output)
feature_maps2 = conv2_acti.predict(inputs, verbose=0)
print("[8-3] feature maps of layer 2:", feature_maps2.shape)
if plt is not None:
    plt.imshow(train_input[0], cmap='gray_r')
    plt.savefig(os.path.join(OUT, "ch8_input_image.png"))
    plt.close()
    fig, axs = plt.subplots(4, 8, figsize=(15, 8))
    for i in range(4):
        for j in range(8):
            axs[i, j].imshow(feature_maps[0, :, :, i * 8 + j])
            axs[i, j].axis('off')
    plt.savefig(os.path.join(OUT, "ch8_feature_maps.png"))
    plt.close()
    # the second convolution's 64 maps (14x14, after one pooling): coarser,
    # each one combining all 32 maps of the first layer
    fig, axs = plt.subplots(8, 8, figsize=(12, 12))
    for i in range(8):
        for j in range(8):
            axs[i, j].imshow(feature_maps2[0, :, :, i * 8 + j])
            axs[i, j].axis('off')
    plt.savefig(os.path.join(OUT, "ch8_feature_maps2.png"))
    plt.close()
print(f"accuracy: {test_acc:.4f}")
