"""Optimizers, as ``keras.optimizers``: one per module, update rules in
``nncore.ops.optimizers`` (NumPy) and ``src_cython/k_optimizers.pxd`` (kernel)."""
from nncore.optimizers.adagrad import Adagrad
from nncore.optimizers.adam import Adam
from nncore.optimizers.optimizer import Optimizer
from nncore.optimizers.rmsprop import RMSprop
from nncore.optimizers.sgd import SGD

ALL = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam}
_BY_CLASS = {c.__name__: c for c in ALL.values()}

#: Keras 3 optimizers nncore does not have (yet): name -> class name
NOT_YET = {"nadam": "Nadam", "adamw": "AdamW", "adamax": "Adamax", "adadelta": "Adadelta",
           "adafactor": "Adafactor", "ftrl": "Ftrl", "lion": "Lion", "lamb": "Lamb",
           "loss_scale_optimizer": "LossScaleOptimizer", "muon": "Muon"}


def get(identifier):
    """An optimizer from a name, a config dict or an instance.

    Names (case-insensitive): ``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``,
    each with Keras's default hyper-parameters.  Other Keras names (``"nadam"``,
    ``"adamw"``...) raise a ValueError saying they are not in nncore yet.

    Example::

        opt = keras.optimizers.get("adam")        # same as keras.optimizers.Adam()
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ALL:
            return ALL[key]()
        if key in NOT_YET:
            raise ValueError(f"optimizer {identifier!r} ({NOT_YET[key]}) is a Keras optimizer "
                             f"that is not in nncore yet; nncore has: {', '.join(ALL)}")
        raise ValueError(f"unknown optimizer {identifier!r}; valid: {', '.join(ALL)}")
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"unknown optimizer {identifier!r}; valid: {', '.join(ALL)} "
                     "or an nncore.optimizers object")


def serialize(opt):
    """``{"class_name": ..., "config": ...}`` for an optimizer (``get`` reads it back)."""
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "get", "serialize"]


def __getattr__(name):
    # keras.optimizers.Nadam & co.: say plainly that nncore lacks them
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
