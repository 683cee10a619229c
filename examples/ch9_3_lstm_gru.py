"""9-3 LSTM과 GRU 셀 / Chapter 9-3: LSTM and GRU cells on IMDB reviews.

The textbook's code with only the imports changed::

    from nncore.datasets import imdb                          # tensorflow.keras.datasets
    from nncore.preprocessing.sequence import pad_sequences   # tensorflow.keras.preprocessing.sequence
    import nncore as keras                                    # from tensorflow import keras

and the file names joined to an output folder.  Four models behind an
``Embedding(500, 16)``: LSTM(8); LSTM(8, dropout=0.3); two stacked
LSTM(8, dropout=0.3) (the first with ``return_sequences=True``); GRU(8); each
with RMSprop(1e-4), a ``best-*.keras`` checkpoint and early stopping, as the
book; then the best two-layer model is loaded back and scored on the test set.

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

Run:  python examples/ch9_3_lstm_gru.py --synthetic --epochs 5

The picture of why the gates help: ``examples/ch9_gradient_flow.py``.
"""
import argparse
import os
import sys
import tempfile


def options(argv=None):
    env = os.environ.get
    p = argparse.ArgumentParser(description="chapter 9-3: LSTM and GRU on IMDB reviews")
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

    # ------------------------------------------------------------------ 9-3
    from nncore.datasets import imdb
    import nncore as keras
    keras.utils.set_random_seed(42)
    (train_input, train_target), (test_input, test_target) = load_or_explain(imdb, 500)
    if a.samples:
        train_input, train_target = train_input[:a.samples], train_target[:a.samples]
        test_input, test_target = test_input[:a.samples], test_target[:a.samples]

    from sklearn.model_selection import train_test_split
    train_input, val_input, train_target, val_target = train_test_split(
        train_input, train_target, test_size=0.2, random_state=42)

    from nncore.preprocessing.sequence import pad_sequences
    train_seq = pad_sequences(train_input, maxlen=100)
    val_seq = pad_sequences(val_input, maxlen=100)

    def train(model, filename, plot_name):
        """The book's compile + fit, the same for every model of 9-3."""
        rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
        model.compile(optimizer=rmsprop, loss='binary_crossentropy', metrics=['accuracy'])
        checkpoint_cb = keras.callbacks.ModelCheckpoint(os.path.join(OUT, filename),
                                                        save_best_only=True)
        early_stopping_cb = keras.callbacks.EarlyStopping(patience=3,
                                                          restore_best_weights=True)
        history = model.fit(train_seq, train_target, epochs=a.epochs, batch_size=64,
                            validation_data=(val_seq, val_target),
                            callbacks=[checkpoint_cb, early_stopping_cb], verbose=a.verbose)
        plot_loss(history, os.path.join(OUT, plot_name))
        run[filename] = (model, history, val_seq, val_target)
        return history

    run = {}   # for whoever imports this script (the tests): model, history, data

    # LSTM
    model = keras.Sequential()
    model.add(keras.layers.Embedding(500, 16, input_shape=(100,)))
    model.add(keras.layers.LSTM(8))
    model.add(keras.layers.Dense(1, activation='sigmoid'))
    model.summary()
    train(model, 'best-lstm-model.keras', 'ch9_3_lstm_loss.png')

    # LSTM with dropout
    model2 = keras.Sequential()
    model2.add(keras.layers.Embedding(500, 16, input_shape=(100,)))
    model2.add(keras.layers.LSTM(8, dropout=0.3))
    model2.add(keras.layers.Dense(1, activation='sigmoid'))
    train(model2, 'best-dropout-model.keras', 'ch9_3_dropout_loss.png')

    # two stacked LSTMs: the first returns its output at every step
    model3 = keras.Sequential()
    model3.add(keras.layers.Embedding(500, 16, input_shape=(100,)))
    model3.add(keras.layers.LSTM(8, dropout=0.3, return_sequences=True))
    model3.add(keras.layers.LSTM(8, dropout=0.3))
    model3.add(keras.layers.Dense(1, activation='sigmoid'))
    model3.summary()
    train(model3, 'best-2rnn-model.keras', 'ch9_3_2rnn_loss.png')

    # GRU
    model4 = keras.Sequential()
    model4.add(keras.layers.Embedding(500, 16, input_shape=(100,)))
    model4.add(keras.layers.GRU(8))
    model4.add(keras.layers.Dense(1, activation='sigmoid'))
    model4.summary()
    train(model4, 'best-gru-model.keras', 'ch9_3_gru_loss.png')

    # the book's last cell: the best two-layer model on the test set
    test_seq = pad_sequences(test_input, maxlen=100)
    rnn_model = keras.models.load_model(os.path.join(OUT, 'best-2rnn-model.keras'))
    loss, acc = rnn_model.evaluate(test_seq, test_target, verbose=0)
    print(f"[9-3 best-2rnn-model.keras] test loss: {loss:.4f} - accuracy: {acc:.4f}")
    for name in ('best-lstm-model.keras', 'best-dropout-model.keras', 'best-gru-model.keras'):
        best = keras.models.load_model(os.path.join(OUT, name))
        loss, acc = best.evaluate(val_seq, val_target, verbose=0)
        print(f"[9-3 {name}] validation loss: {loss:.4f} - accuracy: {acc:.4f}")
    return run


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
