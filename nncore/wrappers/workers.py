"""How many kernel threads a wrapped model uses inside a worker process.

scikit-learn's ``n_jobs``, joblib's process backends and Dask run several
fits at once, one per worker process.  If every worker also ran nncore's
kernels on all cores, a 2-core machine with 2 workers would run 4 threads
on 2 cores, and each fit would wait on the others (oversubscription).  So a
wrapper that arrives in a *different* process from the one that pickled it
-- which is how joblib and Dask hand estimators to their workers -- fits,
predicts and transforms on ``get_worker_threads()`` threads (1 unless told
otherwise), and restores the process's own setting afterwards.  A wrapper
used in the process that made it (``n_jobs=1``) keeps nncore's normal
thread choice.

"Another process" is decided against the wrapper's home: the process that
first pickled it.  A fitted wrapper a worker sends back (``return_estimator``,
``best_estimator_`` from a Dask search) is home again and runs normally; a
wrapper loaded with ``pickle``/``joblib.load`` in a *new* Python session
counts as being in a worker (it cannot tell the difference) and uses the
worker setting it was saved with -- results are the same, only the thread
count differs.  ``sklearn.base.clone`` makes a fresh wrapper without it.
(Clones made inside a worker -- a search run as one task of an outer
``cross_validate`` -- are fresh too: they use the worker process's own
setting, which joblib limits to cores // n_jobs and Dask to 1.)

The setting is read where the wrapper is pickled and travels with it, so
it is set once, in the main process::

    nncore.wrappers.set_worker_threads(2)     # e.g. 4 cores, 2 workers
    nncore.wrappers.set_worker_threads(None)  # leave each worker's own
                                              # setting (OMP_NUM_THREADS,
                                              # joblib's inner_max_num_threads)

Results do not depend on the thread count (nncore's kernels are bitwise
reproducible for any number of threads), only the speed does.
"""
import contextlib
import numbers
import os
import socket

_worker_threads = 1


def set_worker_threads(n):
    """Kernel threads for wrappers running in worker processes: a positive
    int, or None to leave the worker process's own setting alone."""
    global _worker_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral)
                          or n < 1):
        raise ValueError(f"set_worker_threads: n must be a positive integer or None, "
                         f"got {n!r}")
    _worker_threads = None if n is None else int(n)


def get_worker_threads():
    """The value set by ``set_worker_threads`` (default 1)."""
    return _worker_threads


def process_identity():
    """Which process this is, across machines: (host name, process id)."""
    return (socket.gethostname(), os.getpid())


@contextlib.contextmanager
def kernel_threads(n):
    """Run the body with the kernels on ``n`` threads (None: unchanged).

    OpenMP keeps the thread count per calling thread, so setting and
    restoring it here affects only the thread that runs the fit."""
    if n is None:
        yield
        return
    from nncore._info import get_num_threads, set_num_threads
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)
