"""One switch between the compiled kernels and their readable NumPy twins.

Every layer, loss, metric and optimizer gets its arithmetic from
``kernels()``: a namespace holding functions with the same names and
signatures in both backends::

    'cython'  nncore._ext.<module>   the compiled kernels (default)
    'numpy'   nncore.ops.<module>    the NumPy twins, the maths in plain sight

    >>> import nncore
    >>> nncore.backend.set_backend('numpy')      # everything now runs in NumPy
    >>> with nncore.backend.use('cython'):       # ...except inside this block
    ...     model.fit(x, y)

Same seed, same data: both backends train to the same weights (to float32
rounding), which the test suite checks for every optimizer.
"""
import contextlib
import importlib
import types

# The op modules; each exists as nncore/ops/<name>.py and src_cython/<name>.pyx.
OP_MODULES = ("gemm", "activations", "losses", "dropout", "optimizers", "metrics", "training",
              "conv", "embedding", "recurrent", "data")
BACKENDS = ("cython", "numpy")

_current = "cython"
_namespaces = {}


def _load(name):
    """Build the namespace of one backend (the functions the twins define)."""
    if name not in _namespaces:
        functions = {}
        for mod in OP_MODULES:
            twin = importlib.import_module(f"nncore.ops.{mod}")
            if name == "numpy":
                source = twin
            else:
                source = importlib.import_module(f"nncore._ext.{mod}")
            # The twin's __all__ is the list of kernels; both sides define it.
            for f in twin.__all__:
                functions[f] = getattr(source, f)
        _namespaces[name] = types.SimpleNamespace(**functions, name=name)
    return _namespaces[name]


def kernels():
    """The op functions of the current backend (see the module docstring)."""
    return _namespaces.get(_current) or _load(_current)


def get_backend():
    """'cython' or 'numpy'."""
    return _current


def set_backend(name):
    """Make every subsequent op run in ``name`` ('cython' or 'numpy')."""
    global _current
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    _load(name)
    _current = name


@contextlib.contextmanager
def use(name):
    """Context manager: run the block with backend ``name``, then restore."""
    previous = get_backend()
    set_backend(name)
    try:
        yield kernels()
    finally:
        set_backend(previous)
