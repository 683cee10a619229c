"""How many threads the per-batch training path gives each step.

Steps of a CNN take milliseconds, long enough to time one by one, so the
per-batch path (``Model._train_epoch_python``) picks the thread count per
step like the fused loop's ``ThreadChooser``, with one difference: a retry
of a slower candidate costs a whole step, which on a busy machine can be
several times a fast step (a 2-thread team whose members keep losing their
cores to other programs), so retries are spaced so that they cost at most
``MAX_TRIAL_SHARE`` of the time.  Results do not depend on the choice.
"""
from nncore.models.fused import ThreadChooser


class StepThreadChooser(ThreadChooser):
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
