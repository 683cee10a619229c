"""Ctrl-C during training stops after a whole, fully recorded step.

Python raises KeyboardInterrupt between any two bytecodes.  Raised in the
middle of an optimizer update (some weights updated, others not) or just
after the compiled loop returns (weights ahead of ``optimizer.iterations``
and the Dropout counters), it would leave a model that no replay of whole
steps reproduces.  Inside ``DeferredInterrupt`` SIGINT only sets a flag; the
training loops call ``raise_if_pending()`` between steps (or chunks of
steps, every ~50 ms), so the interrupt arrives promptly but cleanly.
"""
import signal
import threading


class DeferredInterrupt:
    def __enter__(self):
        self.pending = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGINT)
            # SIGINT ignored (SIG_IGN, e.g. a background job) or not handled by
            # Python (SIG_DFL): leave it exactly as the user set it
            if callable(current):
                try:
                    self.previous = signal.signal(signal.SIGINT, self._handler)
                except ValueError:      # not the main interpreter
                    self.previous = None
        return self

    def _handler(self, signum, frame):
        self.pending = True

    def raise_if_pending(self):
        if self.pending:
            self.pending = False
            if self.previous is signal.default_int_handler:
                raise KeyboardInterrupt
            self.previous(signal.SIGINT, None)     # the user's own handler

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if exc[0] is None:
            self.raise_if_pending()     # a signal that came during the last step
        return False
