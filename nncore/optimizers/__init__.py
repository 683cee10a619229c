"""Optimizers, as ``keras.optimizers``: one per module, update rules in
``nncore.ops.optimizers`` (NumPy) and ``src_cython/k_optimizers.pxd`` (kernel)."""
from nncore.optimizers.adagrad import Adagrad
from nncore.optimizers.adam import Adam
from nncore.optimizers.optimizer import Optimizer
from nncore.optimizers.rmsprop import RMSprop
from nncore.optimizers.sgd import SGD

ALL = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam}
_BY_CLASS = {c.__name__: c for c in ALL.values()}


def get(identifier):
    """An optimizer from a name ('adam'), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ALL:
            return ALL[key]()
        raise ValueError(f"unknown optimizer {identifier!r}; valid: {', '.join(ALL)}")
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"unknown optimizer {identifier!r}; valid: {', '.join(ALL)} "
                     "or an nncore.optimizers object")


def serialize(opt):
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "get", "serialize"]
