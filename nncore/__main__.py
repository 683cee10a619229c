"""``nncore-train`` (or ``python -m nncore``): train the textbook's chapter-7 model on Fashion-MNIST.

    Flatten -> Dense(100, relu) -> Dropout(0.3) -> Dense(10, softmax), Adam,
    sparse categorical cross-entropy, the last 20% of the training images held
    out for validation (48,000 train / 12,000 validation of the full set),
    early stopping on validation loss; then the accuracy on the 10,000 test images.

Data: --data-dir (or $NNCORE_DATA_DIR), the cache (~/.nncore/datasets), or a
download from the official mirrors; offline with none of those it says so and
trains on the small sample shipped with nncore.
"""
import argparse
import os
import sys
import time

EPILOG = """\
where the data comes from, in order:
  1. --data-dir DIR, else $NNCORE_DATA_DIR: a folder with the four Keras-named
     files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
     t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz
  2. the cache ~/.nncore/datasets/fashion_mnist/ ($NNCORE_HOME moves ~/.nncore)
  3. a download from the official mirrors (checked by SHA-256), into the cache
  4. offline with none of these: the 2,000-image sample shipped with nncore

examples:
  nncore-train                         # the book's settings
  nncore-train --epochs 5 --verbose 1  # five epochs with progress bars
  nncore-train --data-dir ~/fashion-mnist --info
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of ``nncore-train`` (``--help`` prints them)."""
    p = argparse.ArgumentParser(
        prog="nncore-train",
        description="Train the textbook's chapter-7 network on Fashion-MNIST and print its\n"
                    "test accuracy: Flatten -> Dense(100, relu) -> Dropout(0.3) ->\n"
                    "Dense(10, softmax), Adam, the last 20% of the 60,000 training images\n"
                    "held out for validation (48,000 train / 12,000 validation), early\n"
                    "stopping on the validation loss.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20, metavar="N",
                   help="most epochs to train; early stopping (patience 2) usually "
                        "ends sooner (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="images per optimizer step (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42,
                   help="random seed: same seed, same result (default: %(default)s)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2),
                   help="0 silent, 1 progress bar, 2 one line per epoch (default: %(default)s)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="folder with the four Fashion-MNIST .gz files "
                        "(default: $NNCORE_DATA_DIR, else the cache or a download)")
    p.add_argument("--info", action="store_true",
                   help="print nncore.show_config() (build, threads, CPU) first")
    return p


def main(argv=None) -> int:
    """Run ``nncore-train`` with ``argv`` (default: the command line); returns 0."""
    args = build_parser().parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            build_parser().error(f"--{name.replace('_', '-')} must be at least 1")
    if args.data_dir is None:
        return _train(args)
    data_dir = os.path.abspath(os.path.expanduser(args.data_dir))
    if not os.path.isdir(data_dir):
        build_parser().error(f"--data-dir {args.data_dir}: no such folder")
    before = os.environ.get("NNCORE_DATA_DIR")
    os.environ["NNCORE_DATA_DIR"] = data_dir      # what the loader reads
    try:
        return _train(args)
    finally:                                      # main() may be called from Python
        if before is None:
            del os.environ["NNCORE_DATA_DIR"]
        else:
            os.environ["NNCORE_DATA_DIR"] = before


def _train(args) -> int:
    import nncore as keras
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
    validation_split = 0.2
    n_val = x_train.shape[0] - int(x_train.shape[0] * (1 - validation_split))
    n_train = x_train.shape[0] - n_val
    print(f"training on {n_train:,} images, validating on {n_val:,}, "
          f"testing on {x_test.shape[0]:,}")
    early = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_split=validation_split, callbacks=[early],
                        verbose=args.verbose)
    seconds = time.perf_counter() - t0
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    epochs_run = len(history.history["loss"])
    print(f"trained {epochs_run} epochs on {n_train:,} images ({n_val:,} held out for "
          f"validation) in {seconds:.1f} s ({seconds / max(1, epochs_run):.2f} s/epoch)")
    print(f"best val_accuracy: {max(history.history['val_accuracy']):.4f}")
    print(f"test accuracy: {acc:.4f}  test loss: {loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
