"""Cross-check: nncore's TensorBoard callback writes the tags and steps Keras 3 writes.

Not part of the test suite (TensorFlow is never a test dependency).  Run it with
a Python that has nncore and the tensorboard package, naming TensorFlow's Python
(which needs tensorboard too: TF's tf.summary refuses to write without it):

    python tools/tf_check_tensorboard.py --tf-python /work/tfvenv/bin/python

Both frameworks fit the same small model (Dense 8 relu -> Dense 3 softmax,
Adam, 40 samples, validation_split=0.25, batch 10, 3 epochs) with
``TensorBoard(histogram_freq=1)``, ``(update_freq=2, histogram_freq=1)`` and
``(update_freq="batch")``; the event files are read back with TensorBoard's
EventAccumulator and {run folder: {tag: plugin, steps}} is compared, with the
model's auto-generated name ("sequential_2" in one process, "sequential" in
the other) replaced by MODEL.  The values differ (different initial weights)
and are not compared.  Exit status 1 on a difference other than the known
one: with an integer update_freq Keras drops the epoch scalars of epochs whose
last batch number is not a multiple of it (tf.summary.record_if leaks into
them); nncore writes every epoch.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

CONFIGS = {"epoch": dict(histogram_freq=1), "int2": dict(histogram_freq=1, update_freq=2),
           "batch": dict(update_freq="batch")}


def make(framework, out):
    import numpy as np
    if framework == "tf":
        import keras
    else:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import nncore as keras
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = rng.integers(0, 3, 40)
    for name, kw in CONFIGS.items():
        model = keras.Sequential([keras.Input(shape=(4,)),
                                  keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, y, epochs=3, batch_size=10, validation_split=0.25, verbose=0,
                  callbacks=[keras.callbacks.TensorBoard(log_dir=os.path.join(out, name), **kw)])


def tags(root):
    """{run: {tag: [plugin, steps]}} with model/layer names made neutral."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    out = {}
    for name in CONFIGS:
        for run in ("train", "validation"):
            acc = ea.EventAccumulator(os.path.join(root, name, run),
                                      size_guidance={ea.TENSORS: 0})
            acc.Reload()
            got = {}
            for tag in acc.Tags()["tensors"]:
                plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
                neutral = re.sub(r"^sequential(_\d+)?/", "MODEL/", tag)
                neutral = re.sub(r"dense(_\d+)?/", lambda m: "dense/" if m.group(1) is None
                                 else "dense_N/", neutral)
                got[neutral] = [plugin, [e.step for e in acc.Tensors(tag)]]
            out[f"{name}/{run}"] = got
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tf-python", help="TensorFlow's Python")
    ap.add_argument("--make", nargs=2, metavar=("FRAMEWORK", "DIR"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.make:
        make(*a.make)
        return 0
    if not a.tf_python:
        ap.error("--tf-python is required")
    with tempfile.TemporaryDirectory() as d:
        nn_dir, tf_dir = os.path.join(d, "nncore"), os.path.join(d, "tf")
        make("nncore", nn_dir)
        subprocess.run([a.tf_python, os.path.abspath(__file__), "--make", "tf", tf_dir],
                       check=True, stderr=subprocess.DEVNULL)
        nn, tf = tags(nn_dir), tags(tf_dir)
    bad = 0
    for run in nn:
        for tag in sorted(set(nn[run]) | set(tf[run])):
            a_, b_ = nn[run].get(tag), tf[run].get(tag)
            if a_ == b_:
                print(f"same     {run:18s} {tag} {a_}")
                continue
            known = (run.startswith("int2/") and a_ and b_ and a_[0] == b_[0]
                     and (tag.startswith("epoch_") or tag.endswith("/histogram")
                          or tag.startswith("evaluation_"))
                     and set(b_[1]) <= set(a_[1]))
            print(f"{'KNOWN' if known else 'DIFFERS':8s} {run:18s} {tag} nncore={a_} keras={b_}")
            bad += not known
    print(json.dumps({"differences": bad}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
