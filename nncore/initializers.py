"""Weight initialisers, with Keras's names and formulas.

    GlorotUniform   U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))   (Dense's default)
    GlorotNormal    truncated normal, std = sqrt(2 / (fan_in + fan_out))
    HeUniform       U(-limit, limit), limit = sqrt(6 / fan_in)
    HeNormal        truncated normal, std = sqrt(2 / fan_in)
    Orthogonal      the Q of a QR decomposition of a normal matrix, times gain
                    (the recurrent kernels' default)
    RandomNormal / RandomUniform / Zeros / Ones / Constant

For a Dense kernel of shape (inputs, units), fan_in = inputs, fan_out = units.
Values come from nncore's global generator unless a ``seed`` is given.
"""
import numpy as np

from nncore import random as nn_random


class Initializer:
    def __init__(self, seed=None):
        self.seed = seed

    def _rng(self):
        return nn_random.generator() if self.seed is None else np.random.default_rng(self.seed)

    def get_config(self):
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng, std, shape):
    # Keras's truncated normal: redraw values beyond two standard deviations;
    # 0.8796... is the std of a standard normal truncated to [-2, 2].
    std = std / 0.87962566103423978
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * std


class VarianceScaling(Initializer):
    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out,
             "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        var = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * var)
            out = rng.uniform(-limit, limit, shape)
        else:
            out = _truncated_normal(rng, np.sqrt(var), shape)
        return out.astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode,
                "distribution": self.distribution, "seed": self.seed}


class GlorotUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class HeUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class HeNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype="float32"):
        return (self._rng().standard_normal(shape) * self.stddev + self.mean).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype="float32"):
        return self._rng().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class Constant(Initializer):
    def __init__(self, value=0.0):
        super().__init__(None)
        self.value = value

    def __call__(self, shape, dtype="float32"):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class Orthogonal(Initializer):
    """An orthogonal matrix times ``gain`` (Keras's ``Orthogonal``): the rows
    (or columns) of the result are orthonormal, so a recurrent kernel neither
    grows nor shrinks the state it multiplies at the start of training.

    As Keras: for shape (..., cols), rows = product of the other dimensions;
    draw a normal (max(rows, cols), min(rows, cols)) matrix, take Q of its QR
    decomposition with Q's columns signed by diag(R) (so Q is uniformly
    distributed), transpose when rows < cols.
    """
    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype="float32"):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: the shape must have at least 2 dimensions, "
                             f"got {shape}")
        cols = shape[-1]
        rows = int(np.prod(shape[:-1]))
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


ALL = {"glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
       "he_uniform": HeUniform, "he_normal": HeNormal,
       "random_normal": RandomNormal, "random_uniform": RandomUniform,
       "zeros": Zeros, "ones": Ones, "constant": Constant,
       "variance_scaling": VarianceScaling, "orthogonal": Orthogonal}
_BY_CLASS = {cls.__name__: cls for cls in ALL.values()}


def get(identifier):
    """An initializer from a name ('glorot_uniform'), a config dict or an instance."""
    if isinstance(identifier, Initializer) or callable(identifier) and not isinstance(identifier, (str, dict)):
        return identifier
    if isinstance(identifier, str):
        key = identifier if identifier in ALL else None
        if key is None and identifier in _BY_CLASS:
            return _BY_CLASS[identifier]()
        if key is None:
            raise ValueError(f"unknown initializer {identifier!r}; valid: {', '.join(ALL)}")
        return ALL[key]()
    if isinstance(identifier, dict):
        cls = _BY_CLASS.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown initializer class {identifier.get('class_name')!r}")
        return cls.from_config(identifier.get("config", {}))
    raise TypeError(f"cannot interpret {identifier!r} as an initializer")


def serialize(init):
    return {"class_name": type(init).__name__, "config": init.get_config()}


def __getattr__(name):
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
