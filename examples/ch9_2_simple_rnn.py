"""9-2 순환 신경망으로 IMDB 리뷰 분류하기 / Chapter 9-2: sentiment of IMDB
reviews with a SimpleRNN.

The textbook's code with only the imports changed::

    from nncore.datasets import imdb                          # tensorflow.keras.datasets
    from nncore.preprocessing.sequence import pad_sequences   # tensorflow.keras.preprocessing.sequence
    import nncore as keras                                    # from tensorflow import keras

and the file names joined to an output folder.  Two models: a SimpleRNN(8) on
one-hot words (the input is ``(100, 200)`` per review), then the same RNN
behind an ``Embedding(200, 16)``; each with RMSprop(1e-4), a
``best-*.keras`` checkpoint and early stopping, as the book.

The data: ``imdb.load_data`` looks for ``imdb.npz`` in ``$NNCORE_DATA_DIR``
(or ``--data-dir``), then ``~/.nncore/datasets/imdb/``, then downloads it.
Offline and without the file it says where to put it.  ``--synthetic`` makes
made-up reviews with a sentiment signal in Keras's file format first
(``examples/ch9_synthetic_imdb.py``) -- the accuracies are then not the book's.

Options (and the environment variables the test suite uses)::

    --epochs N        NNCORE_EXAMPLE_EPOCHS   (default: the book's 100, with early stopping)
    --samples N       NNCORE_EXAMPLE_SAMPLES  use the first N training reviews (default all)
    --out DIR         NNCORE_EXAMPLE_OUT      folder for the .keras files and plots
                                              (default: a new temporary folder)
    --data-dir DIR    NNCORE_DATA_DIR         where imdb.npz is
    --synthetic       write a synthetic imdb.npz into --data-dir (or the output folder)
    --verbose N       NNCORE_EXAMPLE_VERBOSE  fit's verbosity (default 1)

Run:  python examples/ch9_2_simple_rnn.py --synthetic --epochs 5
"""
import argparse
import os
import sys
import tempfile


def options(argv=None):
    env = os.environ.get
    p = argparse.ArgumentParser(description="chapter 9-2: SimpleRNN on IMDB reviews")
    p.add_argument("--epochs", type=int, default=int(env("NNCORE_EXAMPLE_EPOCHS", "0")) or 100)
    p.add_argument("--samples", type=int, default=int(env("NNCORE_EXAMPLE_SAMPLES", "0")) or None)
    p.add_argument("--out", default=env("NNCORE_EXAMPLE_OUT"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--verbose", type=int, default=int(env("NNCORE_EXAMPLE_VERBOSE", "1")))
    a = p.parse_args(argv)
    a.out = a.out or tempfile.mkdtemp(prefix="nncore-ch9-")
    os.makedirs(a.out, exist_ok=True)
    return a


def prepare_data(a):
    """Point imdb.load_data at the data (and make a synthetic file if asked)."""
    if a.synthetic:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import ch9_synthetic_imdb
        a.data_dir = a.data_dir or a.out
        path = os.path.join(a.data_dir, "imdb.npz")
        if not os.path.exists(path):
            ch9_synthetic_imdb.write_imdb_npz(path, n_train=25000 if a.samples is None
                                              else max(a.samples, 50), n_test=5000
                                              if a.samples is None else max(a.samples // 2, 50))
            print("wrote synthetic reviews to", path)
    if a.data_dir:
        os.environ["NNCORE_DATA_DIR"] = a.data_dir


def load_or_explain(imdb, num_words):
    """imdb.load_data, or a message saying where imdb.npz goes."""
    try:
        return imdb.load_data(num_words=num_words)
    except imdb.DatasetUnavailableError as e:
        sys.exit(f"{e}\n\nPut Keras's imdb.npz into $NNCORE_DATA_DIR (or pass --data-dir), "
                 "or run with --synthetic to train on made-up reviews.")


def main(argv=None):
    a = options(argv)
    print("saving files to", a.out)
    prepare_data(a)
    OUT = a.out

    # ------------------------------------------------------------------ 9-2
    from nncore.datasets import imdb
    import nncore as keras
    keras.utils.set_random_seed(42)
    (train_input, train_target), (test_input, test_target) = load_or_explain(imdb, 200)
    if a.samples:
        train_input, train_target = train_input[:a.samples], train_target[:a.samples]
    print(train_input.shape, test_input.shape)
    print(len(train_input[0]), len(train_input[1]))
    print(train_target[:20])

    from sklearn.model_selection import train_test_split
    train_input, val_input, train_target, val_target = train_test_split(
        train_input, train_target, test_size=0.2, random_state=42)

    import numpy as np
    lengths = np.array([len(x) for x in train_input])
    print("review length: mean", np.mean(lengths), "median", np.median(lengths))

    from nncore.preprocessing.sequence import pad_sequences
    train_seq = pad_sequences(train_input, maxlen=100)
    print(train_seq.shape)
    print(train_seq[0])
    val_seq = pad_sequences(val_input, maxlen=100)

    # the first model: a SimpleRNN on one-hot words
    model = keras.Sequential()
    model.add(keras.layers.SimpleRNN(8, input_shape=(100, 200)))
    model.add(keras.layers.Dense(1, activation='sigmoid'))
    train_oh = keras.utils.to_categorical(train_seq)
    print(train_oh.shape)
    print(np.sum(train_oh[0][0]))
    val_oh = keras.utils.to_categorical(val_seq)
    model.summary()

    rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
    model.compile(optimizer=rmsprop, loss='binary_crossentropy', metrics=['accuracy'])
    checkpoint_cb = keras.callbacks.ModelCheckpoint(
        os.path.join(OUT, 'best-simplernn-model.keras'), save_best_only=True)
    early_stopping_cb = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    history1 = history = model.fit(train_oh, train_target, epochs=a.epochs, batch_size=64,
                        validation_data=(val_oh, val_target),
                        callbacks=[checkpoint_cb, early_stopping_cb], verbose=a.verbose)
    plot_loss(history, os.path.join(OUT, "ch9_2_simplernn_loss.png"))

    # the second model: an Embedding in front of the same RNN
    model2 = keras.Sequential()
    model2.add(keras.layers.Embedding(200, 16, input_shape=(100,)))
    model2.add(keras.layers.SimpleRNN(8))
    model2.add(keras.layers.Dense(1, activation='sigmoid'))
    model2.summary()

    rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
    model2.compile(optimizer=rmsprop, loss='binary_crossentropy', metrics=['accuracy'])
    checkpoint_cb = keras.callbacks.ModelCheckpoint(
        os.path.join(OUT, 'best-embedding-model.keras'), save_best_only=True)
    early_stopping_cb = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    history2 = history = model2.fit(train_seq, train_target, epochs=a.epochs, batch_size=64,
                         validation_data=(val_seq, val_target),
                         callbacks=[checkpoint_cb, early_stopping_cb], verbose=a.verbose)
    plot_loss(history, os.path.join(OUT, "ch9_2_embedding_loss.png"))

    # the checkpoints load back and score the validation set
    for name, x in (("best-simplernn-model.keras", val_oh),
                    ("best-embedding-model.keras", val_seq)):
        best = keras.models.load_model(os.path.join(OUT, name))
        loss, acc = best.evaluate(x, val_target, verbose=0)
        print(f"[9-2 {name}] validation loss: {loss:.4f} - accuracy: {acc:.4f}")
    # for whoever imports this script (the tests): each checkpoint's model,
    # its history and the validation data it was scored on
    return {"best-simplernn-model.keras": (model, history1, val_oh, val_target),
            "best-embedding-model.keras": (model2, history2, val_seq, val_target)}


def plot_loss(history, path):
    """The book's loss curves (skipped without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no loss plot")
        return
    plt.plot(history.history['loss'])
    plt.plot(history.history['val_loss'])
    plt.xlabel('epoch')
    plt.ylabel('loss')
    plt.legend(['train', 'val'])
    plt.savefig(path)
    plt.close()


if __name__ == "__main__":
    main()
