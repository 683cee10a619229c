"""Weight regularizers: a penalty added to the loss, as ``keras.regularizers``.

    L1(l1=0.01)        penalty = l1 * sum |w|
    L2(l2=0.01)        penalty = l2 * sum w^2
    L1L2(l1=0, l2=0)   both

The penalty is part of the reported training loss (as in Keras); its gradient
is added to the kernel gradient by ``l1_l2_penalty_and_grad``.
"""


class Regularizer:
    def __init__(self, l1=0.0, l2=0.0):
        for n, v in (("l1", l1), ("l2", l2)):
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"{type(self).__name__}: {n} must be a number >= 0, got {v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        import numpy as np
        w = np.asarray(w, dtype=np.float64)
        return self.l1 * np.abs(w).sum() + self.l2 * (w * w).sum()

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config):
        return L1L2(**config)


class L1(Regularizer):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L2(Regularizer):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    @classmethod
    def from_config(cls, config):
        return cls(**config)


l1, l2, l1_l2 = L1, L2, L1L2
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_NAME:
        return _BY_NAME[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"unknown regularizer {identifier!r}; valid: 'l1', 'l2', 'l1_l2' "
                     "or a nncore.regularizers object")


def serialize(reg):
    return None if reg is None else {"class_name": type(reg).__name__, "config": reg.get_config()}


def __getattr__(name):
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
