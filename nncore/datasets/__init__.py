"""Built-in datasets, Keras-style: ``fashion_mnist`` and ``mnist``.

    from nncore.datasets import fashion_mnist
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()

Files are looked up in ``$NNCORE_DATA_DIR``, then in the cache
``~/.nncore/datasets/<name>/`` (``$NNCORE_HOME`` replaces ``~/.nncore``), then
downloaded from official mirrors with SHA-256 verification.  When a dataset is
unavailable, :class:`DatasetUnavailableError` (a ``FileNotFoundError``) says
where to put the files.  ``fashion_mnist.load_sample()`` returns a small
genuine subset shipped with the package, for offline use.
"""
from . import fashion_mnist, imdb, mnist
from ._download import DatasetUnavailableError, cache_dir, nncore_home

__all__ = ["fashion_mnist", "imdb", "mnist", "DatasetUnavailableError", "cache_dir", "nncore_home"]


def __getattr__(name):
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
