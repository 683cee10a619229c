"""The epoch loop: one driver for every way ``fit`` takes its steps.

``fit`` picks a *stepper* once per call (``make_stepper``):

* ``PlanStepper`` -- the model's step plan (``nncore/models/plan.py``) run a
  chunk of steps at a time by ``kernels().run_steps``: the compiled loop
  (``src_cython/training.pyx``) or, with ``set_backend('numpy')``, its NumPy
  twin (``nncore/ops/training.py``);
* ``BatchStepper`` -- the general per-batch path, ``Model._train_step`` once
  a step, for models the plan cannot describe (the reason is kept in
  ``stepper.reason``) or when ``model.use_fused`` is False.

``run_epoch`` then drives either one the same way: chunks of steps sized to
return to Python about every 50 ms (progress bar, learning-rate changes,
Ctrl-C), one step per chunk when a callback wants every batch, the thread
count of each compiled chunk picked by ``ThreadChooser``, and SIGINT deferred
so that training stops after a whole, recorded step.  Both steppers add into
the same running sums ``[loss * batch, samples, correct_0, weight_0, ...]``.
"""
import collections
import time

import numpy as np

from nncore import backend
from nncore.models import data as D
from nncore.models import plan as P
from nncore.models.interrupt import DeferredInterrupt

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
        if steps <= 0 or seconds < self.MIN_SECONDS or threads not in self.timings:
            return
        if self.trial:
            self.retries += 1
        self.timed += 1
        self.timings[threads].append(seconds / steps)


class StepThreadChooser(ThreadChooser):
    """The per-batch path's chooser.  Its steps (a CNN's take milliseconds)
    are long, so a retry of a slower candidate can cost several fast steps
    on a busy machine (a 2-thread team whose members keep losing their cores
    to other programs): retries are spaced to cost at most MAX_TRIAL_SHARE
    of the time, and the first chunk (buffers being allocated) is not timed.
    Results do not depend on the choice."""
    MAX_TRIAL_SHARE = 0.1

    def __init__(self, team):
        super().__init__(team)
        self.since_trial = 0.0      # seconds of chosen-candidate steps since the last retry
        self.warm = False           # the first step allocates buffers: not timed

    def pick(self):
        self.trial = False
        for c in self.candidates:
            if not self.timings[c]:
                return c
        best = min(self.candidates, key=self.estimate)
        others = [c for c in self.candidates if c != best]
        if others:
            other = others[self.retries % len(others)]
            if self.estimate(other) <= self.MAX_TRIAL_SHARE * self.since_trial:
                self.trial = True
                self.since_trial = 0.0
                return other
        return best

    def record(self, threads, seconds, steps):
        if not self.warm:
            self.warm = True
            return
        if not self.trial:
            self.since_trial += seconds
        super().record(threads, seconds, steps)


class BatchStepper:
    """The general path: ``Model._train_step`` on one gathered batch a step."""
    route = "per-batch"

    def __init__(self, model, x, t, sw, batch_size, reason):
        from nncore import _info
        self.model, self.x, self.t, self.sw = model, x, t, sw
        self.batch_size, self.reason = batch_size, reason
        # the kernels' thread count is picked per chunk, as in the compiled
        # loop; the choice carries over to the next fit of the same model
        self.team = _info.get_num_threads()
        cached = model.__dict__.get("_batch_chooser")
        if cached is None or cached.candidates[0] != self.team:
            cached = model._batch_chooser = (StepThreadChooser(self.team) if self.team > 1
                                             else ThreadChooser(1))
        self.chooser = cached
        self.backend = backend.get_backend()
        self.metrics = model._resolve_metrics()

    def layout(self):
        return None

    def run(self, order, first_step, n_steps, sums, threads):
        from nncore._ext import config
        if threads != self.team:
            config.set_num_threads(threads)       # this thread only, for this chunk
        try:
            return self._run(order, first_step, n_steps, sums)
        finally:
            if threads != self.team:
                config.set_num_threads(self.team)

    def _run(self, order, first_step, n_steps, sums):
        model, bs = self.model, self.batch_size
        metrics = self.metrics
        done = 0
        for s in range(first_step, first_step + n_steps):
            start = s * bs
            if start >= len(order):
                break
            idx = order[start:start + bs]
            xb, tb = self.x[idx], self.t[idx]
            swb = None if self.sw is None else self.sw[idx]
            batch_loss, preds = model._train_step(xb, tb, swb)
            done += 1
            nb = xb.shape[0]
            sums[0] += batch_loss * nb
            sums[1] += nb
            for j, (correct, weight) in enumerate(model._metric_counts(metrics, tb, preds, swb)):
                sums[2 + 2 * j] += correct
                sums[3 + 2 * j] += weight
            if model.stop_training:
                break
        return done


class PlanStepper:
    """The step plan, run a chunk at a time by ``kernels().run_steps``."""
    route = "run_steps"
    reason = None

    def __init__(self, model, plan, x, t, sw, batch_size):
        self.model, self.plan = model, plan
        self.metrics = model._resolve_metrics()
        self.x2 = x.reshape(x.shape[0], -1)
        self.labels = t if plan.sparse else None
        self.targets = None if plan.sparse else t
        self.sw, self.batch_size = sw, batch_size
        self.batch = min(batch_size, self.x2.shape[0])    # the largest batch a step sees
        self.backend = backend.get_backend()
        self.fused = plan.build(self.batch, sw is not None)
        self.run_steps = backend.kernels().run_steps
        # the chooser's timings carry over to the next fit of the same model
        # (Keras code often calls fit once per epoch), as long as the work is
        # the same
        team = self.fused.layout(self.batch)["threads"]
        key = (team, batch_size, self.backend) + plan.key()
        cached = getattr(model, "_thread_chooser", None)
        self.chooser = cached[1] if cached is not None and cached[0] == key else ThreadChooser(team)
        model._thread_chooser = (key, self.chooser)

    def layout(self):
        """How the compiled loop shares out the work (threads, column-split
        head) for this fit's batch size -- for tests and benchmarks."""
        return self.fused.layout(self.batch)

    def run(self, order, first_step, n_steps, sums, threads):
        model = self.model
        self.fused.set_learning_rate(model.optimizer.learning_rate)
        done = self.run_steps(self.fused, self.x2, self.labels, self.targets, self.sw, order,
                              first_step, n_steps, self.batch_size,
                              model.optimizer.iterations, sums, threads)
        model.optimizer.iterations += done
        self.plan.write_back(self.fused)
        return done


def make_stepper(model, x, t, sw, batch_size):
    """The stepper ``fit`` uses for this model and data (see the module docstring)."""
    if not model.use_fused:
        return BatchStepper(model, x, t, sw, batch_size, "use_fused is False")
    if model._observers:
        return BatchStepper(model, x, t, sw, batch_size, "a step observer is attached")
    if isinstance(x, D.OneHotRows):
        # batches of positions: the plan's loop would read converted rows
        return BatchStepper(model, x, t, sw, batch_size,
                            "the one-hot input is kept as the positions of its 1s")
    if isinstance(x, D.CastOnRead) and x.size * x.dtype.itemsize > D.PLAN_COPY_BYTES:
        # the plan's loop reads one array of the model's dtype: it would need a
        # full converted copy (1.6 GB more for the book's float64 one-hot input)
        return BatchStepper(model, x, t, sw, batch_size,
                            f"the {x.base.dtype} input ({x.base.nbytes / 2**20:,.0f} MB) "
                            "is converted batch by batch, not copied whole")
    try:
        plan = P.make_plan(model)
    except P.Unsupported as e:
        return BatchStepper(model, x, t, sw, batch_size, str(e))
    if int(np.prod(x.shape[1:])) != plan.n_features:
        return BatchStepper(model, x, t, sw, batch_size, "input width differs from the plan's")
    if plan.sample_shape is not None and tuple(x.shape[1:]) != plan.sample_shape:
        return BatchStepper(model, x, t, sw, batch_size,
                            f"images of shape {tuple(x.shape[1:])}, not the "
                            f"{plan.sample_shape} the model was built for")
    return PlanStepper(model, plan, x, t, sw, batch_size)


def run_epoch(model, stepper, order, steps, cbs):
    """Train one epoch: ``steps`` steps over ``order``; returns its logs.

    (A model compiled again during an epoch -- by a callback -- trains on
    with the new optimizer from the next epoch: ``fit`` makes a new stepper.)"""
    metrics = stepper.metrics
    order = np.ascontiguousarray(order, dtype=np.intp)
    sums = np.zeros(2 + 2 * len(metrics))
    for j, m in enumerate(metrics):
        sums[2 + 2 * j], sums[3 + 2 * j] = m.total, m.count
    hooks = cbs.needs_batch_hooks()
    step, chunk, logs = 0, 1 if hooks else 8, {}
    with DeferredInterrupt() as interrupt:
        while step < steps:
            interrupt.raise_if_pending()
            if hooks:
                cbs.on_train_batch_begin(step)
            chooser = stepper.chooser
            threads = chooser.pick()
            n = 1 if hooks else min(chunk, steps - step)
            if chooser.trial:
                n = min(n, max(1, int(chooser.TRIAL_SECONDS / chooser.estimate(threads))))
            t0 = time.perf_counter()
            done = stepper.run(order, step, n, sums, threads)
            elapsed = time.perf_counter() - t0
            chooser.record(threads, elapsed, done)
            step += done
            for j, m in enumerate(metrics):
                m.total, m.count = sums[2 + 2 * j], sums[3 + 2 * j]
            logs = model._logs(sums[0], sums[1], metrics)
            if hooks:
                cbs.on_train_batch_end(step - 1, logs)
            else:
                cbs.update_progress(step, logs)
            if done < n or model.stop_training:
                break
            # aim at TARGET_SECONDS per chunk, growing or shrinking by 2x at most
            per_step = elapsed / max(1, done)
            chunk = int(min(max(TARGET_SECONDS / max(per_step, 1e-7), chunk / 2, 1), chunk * 2))
    model._last_route = FitRoute(stepper)
    return logs


class FitRoute:
    """How the last epoch of ``fit`` ran (for tests and curious users):
    ``route`` ('run_steps' or 'per-batch'), ``backend``, ``reason`` (why the
    per-batch path), ``kernel_module`` (where run_steps came from) and
    ``layout()`` (threads / column-split head of the compiled loop).  A plain
    record: the model keeps no reference to the training data or the plan."""

    def __init__(self, stepper):
        self.route, self.backend, self.reason = stepper.route, stepper.backend, stepper.reason
        fused = getattr(stepper, "fused", None)
        self.kernel_module = type(fused).__module__ if fused is not None else None
        self._layout = stepper.layout()

    def layout(self):
        return self._layout

    def __repr__(self):
        return (f"<FitRoute {self.route} on {self.backend}"
                + (f": {self.reason}" if self.reason else "") + ">")
