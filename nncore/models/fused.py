"""Hand whole runs of training steps to the compiled loop (``src_cython/training.pyx``).

``make_epoch_runner`` checks that the model is something the loop handles --
a Sequential of Dense / Dropout / Activation / Flatten with a built-in loss,
optimizer (no clipping or weight decay) and accuracy metrics -- and returns a
function that trains one epoch, or None to fall back to the per-batch path.

The loop calls the same kernels in the same order as ``Model._train_step``,
so switching paths never changes a result (the test suite checks this).  It
returns to Python every ~50 ms: to redraw the progress bar, to let Ctrl-C
through (a KeyboardInterrupt then stops training after a whole step), and to
pick up a learning rate changed by a callback.
"""
import collections
import time

import numpy as np

from nncore import backend
from nncore._ext import training
from nncore._ext.activations import ACTIVATION_CODES
from nncore import losses as L
from nncore import metrics as M
from nncore.layers import Activation, Dense, Dropout, Flatten
from nncore.models.interrupt import DeferredInterrupt

# which loss kernel (training.LOSS_KINDS) serves a loss class on each path
LOSS_KINDS = {
    (L.SparseCategoricalCrossentropy, "logits"): "softmax_sparse",
    (L.SparseCategoricalCrossentropy, "output_logits"): "softmax_sparse",
    (L.SparseCategoricalCrossentropy, "probs"): "probs_sparse",
    (L.CategoricalCrossentropy, "logits"): "softmax_dense",
    (L.CategoricalCrossentropy, "output_logits"): "softmax_dense",
    (L.CategoricalCrossentropy, "probs"): "probs_dense",
    (L.BinaryCrossentropy, "logits"): "sigmoid_bce",
    (L.BinaryCrossentropy, "output_logits"): "sigmoid_bce",
    (L.BinaryCrossentropy, "probs"): "probs_bce",
    (L.MeanSquaredError, "probs"): "mse",
}
METRIC_KINDS = {M.SparseCategoricalAccuracy: "sparse", M.CategoricalAccuracy: "onehot",
                M.BinaryAccuracy: "binary"}
TARGET_SECONDS = 0.05     # time between returns to Python


class ThreadChooser:
    """How many threads the next chunk of steps gets.

    The loop's results do not depend on its thread count (bitwise), so each
    chunk may use whichever is fastest *now*.  A team of threads wins on an
    idle machine; when other programs keep the cores busy, threads that wait
    for each other twice a step can lose to a single one.  So the chooser
    times seconds per step for each candidate (the team, 2 threads when the
    team is bigger, 1 thread), uses the fastest, and retries another one
    every RETRY-th timed chunk, because the load on a machine changes.

    A candidate's estimate is the best of its last WINDOW timings: on a
    shared machine the noise only ever slows a chunk down, so one unlucky
    chunk must not condemn the team, while a lasting change still shows
    within WINDOW retries."""
    RETRY = 8
    WINDOW = 4
    MIN_SECONDS = 0.005     # shorter chunks are timed too roughly to compare
    TRIAL_SECONDS = 0.01    # a retry costs at most this much of slower steps

    def __init__(self, team):
        self.candidates = [team] + [c for c in (2, 1) if c < team]   # the team first
        self.timings = {c: collections.deque(maxlen=self.WINDOW) for c in self.candidates}
        self.timed = 0
        self.retries = 0
        self.trial = False

    def estimate(self, threads):
        """Seconds per step expected on this many threads (None: not timed yet)."""
        t = self.timings[threads]
        return min(t) if t else None

    def pick(self):
        """Threads for the next chunk; sets ``self.trial`` when that is a
        retry of a candidate believed slower (the caller keeps such chunks
        short: TRIAL_SECONDS)."""
        self.trial = False
        for c in self.candidates:
            if not self.timings[c]:
                return c
        best = min(self.candidates, key=self.estimate)
        if len(self.candidates) > 1 and self.timed % self.RETRY == self.RETRY - 1:
            others = [c for c in self.candidates if c != best]
            self.trial = True
            return others[self.retries % len(others)]
        return best

    def record(self, threads, seconds, steps):
        if steps <= 0 or seconds < self.MIN_SECONDS:
            return
        if self.trial:
            self.retries += 1
        self.timed += 1
        self.timings[threads].append(seconds / steps)


def _plan_layers(model, path):
    """Layer dicts for FusedPlan, or None if some layer is not supported."""
    # Flatten is a no-op on row-major data once x is 2-D; rate-0 Dropout is identity.
    layers = [l for l in model.layers
              if not isinstance(l, Flatten) and not (isinstance(l, Dropout) and l.rate == 0)]
    opt = model.optimizer
    variables, _ = model._trainable_pairs()
    index = {id(v): i for i, v in enumerate(variables)}   # optimizer slot order
    specs = []
    first = None
    trainable_model = model.trainable
    for i, layer in enumerate(layers):
        if not isinstance(layer, (Dense, Dropout, Activation)):
            return None
        if isinstance(layer, Dense) and len(layer.input_shape) != 2:
            return None         # Dense on N-D input: the per-batch path
        n_in = layer.input_shape[-1]
        n_out = layer.output_shape[-1]
        if n_in is None or n_out is None:
            return None
        spec = {"n_in": n_in, "n_out": n_out}
        is_last = i == len(layers) - 1
        if isinstance(layer, Dense):
            train = trainable_model and layer.trainable
            if first is None and train:
                first = i
            none = (None,) * 3
            slots_w = opt.slot_triplet(index[id(layer.kernel)]) if id(layer.kernel) in index else none
            slots_b = (opt.slot_triplet(index[id(layer.bias)])
                       if layer.use_bias and id(layer.bias) in index else none)
            kr, br = layer.kernel_regularizer, layer.bias_regularizer
            spec.update(kind="dense", act=ACTIVATION_CODES[layer.activation],
                        logits=int(is_last and path == "logits"),
                        W=layer.kernel.value, dW=layer.grads[0],
                        train_W=int(id(layer.kernel) in index),
                        reg_W=int(kr is not None), l1_W=kr.l1 if kr else 0.0,
                        l2_W=kr.l2 if kr else 0.0, sW=list(slots_w),
                        b=layer.bias.value if layer.use_bias else None,
                        db=layer.grads[1] if layer.use_bias else None,
                        train_b=int(layer.use_bias and id(layer.bias) in index),
                        reg_b=int(br is not None and layer.use_bias),
                        l1_b=br.l1 if br else 0.0, l2_b=br.l2 if br else 0.0,
                        sb=list(slots_b))
        elif isinstance(layer, Dropout):
            spec.update(kind="dropout", rate=layer.rate, seed=layer._stream_seed,
                        step=layer.step)
        else:
            spec.update(kind="activation", act=ACTIVATION_CODES[layer.activation],
                        logits=int(is_last and path == "logits"))
        specs.append(spec)
    if first is None:
        return None
    for i, spec in enumerate(specs):
        spec["need_dx"] = int(spec["kind"] == "dense" and i > first)
    return layers, specs


def make_epoch_runner(model, x, t, sw, batch_size, cbs):
    if backend.get_backend() != "cython" or model.optimizer.needs_python_step:
        return None
    if model.dtype not in (np.float32, np.float64):
        return None
    path = model._loss_path()
    kind = LOSS_KINDS.get((type(model.loss), path))
    if kind is None or model.loss.reduction != "sum_over_batch_size":
        return None
    metrics = model._resolve_metrics()
    if any(type(m) not in METRIC_KINDS for m in metrics):
        return None
    planned = _plan_layers(model, path)
    if planned is None:
        return None
    layers, specs = planned
    sparse = model.loss.target_kind == "sparse"
    x2 = x.reshape(x.shape[0], -1)
    if x2.shape[1] != specs[0]["n_in"]:
        return None
    batch = min(batch_size, x2.shape[0])      # the largest batch a step sees
    plan = training.FusedPlan(
        specs, model.optimizer.kernel_params(), kind,
        [(METRIC_KINDS[type(m)], getattr(m, "threshold", 0.5), m.weighted) for m in metrics],
        batch, x2.shape[1], model.output_units, model.dtype == np.float64,
        sparse, sw is not None)
    labels = t if sparse else None
    targets = None if sparse else t
    dropouts = [(i, l) for i, l in enumerate(layers) if isinstance(l, Dropout)]

    # the chooser's timings carry over to the next fit of the same model (Keras
    # code often calls fit once per epoch), as long as the work is the same
    team = plan.layout(batch)["threads"]
    key = (team, batch_size, model.dtype, model.optimizer.kernel_params()["kind"],
           tuple((s["kind"], s["n_in"], s["n_out"]) for s in specs))
    cached = getattr(model, "_fused_chooser", None)
    chooser = cached[1] if cached is not None and cached[0] == key else ThreadChooser(team)
    model._fused_chooser = (key, chooser)

    def run_epoch(order, steps, metric_objs):
        with DeferredInterrupt() as interrupt:
            return _run_epoch(order, steps, metric_objs, interrupt)

    # how the loop shares out the work (threads, column-split head), for tests
    run_epoch.layout = lambda: plan.layout(batch)

    def _run_epoch(order, steps, metric_objs, interrupt):
        order = np.ascontiguousarray(order, dtype=np.intp)
        sums = np.zeros(2 + 2 * len(metric_objs))
        for j, m in enumerate(metric_objs):
            sums[2 + 2 * j], sums[3 + 2 * j] = m.total, m.count
        step, chunk = 0, 8
        logs = {}
        while step < steps:
            interrupt.raise_if_pending()
            plan.set_learning_rate(model.optimizer.learning_rate)
            threads = chooser.pick()
            t0 = time.perf_counter()
            n = min(chunk, steps - step)
            if chooser.trial:
                n = min(n, max(1, int(chooser.TRIAL_SECONDS / chooser.estimate(threads))))
            done = plan.run(x2, labels, targets, sw, order, step, n, batch_size,
                            model.optimizer.iterations, sums, threads)
            elapsed = time.perf_counter() - t0
            chooser.record(threads, elapsed, done)
            model.optimizer.iterations += done
            step_counts = plan.dropout_steps()
            for i, layer in dropouts:
                layer.step = step_counts[i]
            step += n
            for j, m in enumerate(metric_objs):
                m.total, m.count = sums[2 + 2 * j], sums[3 + 2 * j]
            logs = model._logs(sums[0], sums[1], metric_objs)
            cbs.update_progress(step, logs)
            # aim at TARGET_SECONDS per call, growing or shrinking by 2x at most
            per_step = elapsed / max(1, n)
            chunk = int(min(max(TARGET_SECONDS / max(per_step, 1e-7), chunk / 2, 1), chunk * 2))
            if model.stop_training:
                break
        return logs

    return run_epoch
