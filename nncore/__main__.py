"""``nncore-train`` (or ``python -m nncore``): train the textbook's chapter-7 model on Fashion-MNIST.

    Flatten -> Dense(100, relu) -> Dropout(0.3) -> Dense(10, softmax), Adam,
    sparse categorical cross-entropy, 20% of the training set held out for
    validation, early stopping on validation loss; then the test accuracy.

Data: $NNCORE_DATA_DIR, the cache (~/.nncore), or a download from the
official mirrors; offline with none of those it says so and trains on the
small sample shipped with nncore.
"""
import argparse
import sys
import time


def main(argv=None):
    import nncore as keras

    p = argparse.ArgumentParser(prog="nncore-train", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    p.add_argument("--info", action="store_true", help="print show_config() first")
    args = p.parse_args(argv)
    if args.info:
        keras.show_config()

    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data_or_sample()
    x_train, x_test = x_train / 255.0, x_test / 255.0
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()
    early = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_split=0.2, callbacks=[early], verbose=args.verbose)
    seconds = time.perf_counter() - t0
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    epochs_run = len(history.history["loss"])
    print(f"trained {epochs_run} epochs on {x_train.shape[0]:,} images in {seconds:.1f} s "
          f"({seconds / max(1, epochs_run):.2f} s/epoch)")
    print(f"best val_accuracy: {max(history.history['val_accuracy']):.4f}")
    print(f"test accuracy: {acc:.4f}  test loss: {loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
