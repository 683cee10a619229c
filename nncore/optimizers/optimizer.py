"""Optimizer base: slots, the step counter, clipping and weight decay.

``apply(grads, variables)`` does what Keras 3 does, in this order:
  1. clip the gradients (``clipvalue``, ``clipnorm`` per tensor, or
     ``global_clipnorm`` over all of them), when asked;
  2. decoupled weight decay ``w -= w * weight_decay * lr``, when asked;
  3. the update rule of the subclass (one kernel call per variable);
  4. ``iterations += 1``.
Slots (momentum, running averages, ...) are created on the first call, one
per variable and slot name, zero-initialised unless the subclass says not.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from nncore.backend import kernels


def _unexpected_arguments_message(cls_name, kwargs):
    """TypeError text for unknown constructor arguments, with the usual fixes."""
    import difflib
    import inspect
    cls = {c.__name__: c for c in _all_subclasses(Optimizer)}.get(cls_name, Optimizer)
    known = [p for p in inspect.signature(cls.__init__).parameters
             if p not in ("self", "kwargs")]
    known += [p for p in inspect.signature(Optimizer.__init__).parameters
              if p not in ("self", "kwargs") and p not in known]
    parts = []
    for k in kwargs:
        if k == "lr":
            # Keras 2 accepted lr=; Keras 3 refuses it, and so does nncore
            parts.append(f"`{k}` is not an argument: the learning rate is spelled out "
                         f"in full, e.g. {cls_name}(learning_rate={kwargs[k]!r})")
        elif k == "decay":
            parts.append("`decay` (the Keras 2 learning-rate decay) is not an argument: "
                         "use keras.callbacks.LearningRateScheduler, or weight_decay= "
                         "for decoupled weight decay")
        else:
            close = difflib.get_close_matches(k, known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            parts.append(f"unexpected argument `{k}`{hint}")
    return (f"{cls_name}: " + "; ".join(parts)
            + f". Arguments: {', '.join(known)}")


def _all_subclasses(cls):
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


class Optimizer:
    #: slot names, in the order the kernel takes them (s1, s2, s3)
    """Base class of the optimizers: how a gradient becomes a weight update.

    Every optimizer moves each weight ``w`` against its gradient ``g = dL/dw``;
    they differ in how the step is scaled (momentum, running averages).

    Args:
        learning_rate: step size (the subclasses give Keras's defaults).  Spelled
            out in full: ``lr=`` is refused, as in Keras 3.
        weight_decay: decoupled weight decay ``w -= w * weight_decay * lr``.
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: clip all gradients together to this L2 norm.
        name: the optimizer's name.

    One ``apply`` (= one training step) does: clip, decay, the update rule,
    ``iterations += 1``.  ``optimizer.learning_rate`` can be read and assigned
    (callbacks such as ReduceLROnPlateau do); ``optimizer.lr`` is an alias.

    Example::

        opt = keras.optimizers.Adam(learning_rate=0.001)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    """
    def slot_names(self):
        """Names of the per-weight state arrays (e.g. ``["m", "v"]`` for Adam)."""
        return []

    def __init__(self, learning_rate: float = 0.001, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None,
                 **kwargs) -> None:
        for k in ("use_ema", "ema_momentum", "ema_overwrite_frequency",
                  "loss_scale_factor", "gradient_accumulation_steps"):
            if kwargs.pop(k, None) not in (None, False, 0.99):
                raise ValueError(f"{type(self).__name__}: {k} is not supported by nncore")
        if kwargs:
            raise TypeError(_unexpected_arguments_message(type(self).__name__, kwargs))
        if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of clipnorm, clipvalue and global_clipnorm can be set")
        owner = type(self).__name__
        # Keras does not check these; a negative or NaN value there only shows
        # up later as NaN weights, so refuse it here, naming the argument.
        if weight_decay is not None:
            weight_decay = self._check_range(owner, "weight_decay", weight_decay, 0,
                                             float("inf"))
        clipnorm = None if clipnorm is None else self._check_positive(owner, "clipnorm", clipnorm)
        clipvalue = None if clipvalue is None else self._check_positive(owner, "clipvalue",
                                                                         clipvalue)
        global_clipnorm = (None if global_clipnorm is None else
                           self._check_positive(owner, "global_clipnorm", global_clipnorm))
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.built = False
        self._variables = []
        self.slots = []          # per variable: {slot name: array}

    # learning_rate is a plain float (callbacks read and assign it)
    @property
    def learning_rate(self):
        """The step size, a float >= 0 (assignable, e.g. by a scheduler)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{type(self).__name__}: learning_rate must be a number, "
                            f"got {value!r}")
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}: learning_rate must be a finite "
                             f"number >= 0, got {value!r}")
        self._learning_rate = value

    lr = learning_rate

    @staticmethod
    def _check_range(owner, name, value, lo, hi, hi_open=True):
        """A hyper-parameter must be a number in [lo, hi) (or [lo, hi])."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                lo <= value < hi if hi_open else lo <= value <= hi):
            bracket = ")" if hi_open else "]"
            raise ValueError(f"{owner}: {name} must be a number in [{lo}, {hi}{bracket}, "
                             f"got {value!r}")
        return float(value)

    @staticmethod
    def _check_positive(owner, name, value):
        """A hyper-parameter that must be a finite number > 0 (an epsilon of
        0 divides 0 by 0 for every weight whose gradient is 0)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not math.isfinite(value) or value <= 0:
            raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
        return float(value)

    def _slot_init(self, name):
        return 0.0

    def build(self, variables):
        """Create the slots of these variables.  The optimizer then belongs to
        them: slots are found by the variable's identity, never by position,
        so a frozen layer (fewer variables) or another order is fine, and a
        variable it was not built for is refused (see ``slots_for``)."""
        self._variables = list(variables)
        self._slot_index = {id(v): i for i, v in enumerate(self._variables)}
        self.slots = [{s: np.full(v.shape, self._slot_init(s), dtype=v.dtype)
                       for s in self.slot_names()} for v in self._variables]
        self.built = True

    def __setstate__(self, state):
        # (copy.deepcopy of a model) the index is by identity: rebuild it for
        # the copied variables
        self.__dict__.update(state)
        self._slot_index = {id(v): i for i, v in enumerate(self.__dict__.get("_variables", []))}

    def _index(self, var):
        """The position of var's slots; a clear error for a stranger."""
        i = self.__dict__.get("_slot_index", {}).get(id(var))
        if i is None or self._variables[i] is not var:
            known = getattr(self._variables[0], "path", None) if self._variables else None
            path = getattr(var, "path", f"array of shape {np.shape(var)}")
            raise ValueError(
                f"{type(self).__name__}: variable '{path}' is not one this optimizer was "
                f"built for (it holds state for {len(self._variables)} other variables"
                + (f", e.g. '{known}'" if known else "") + "). An optimizer instance "
                "belongs to the variables of the model it first trained: for another "
                "model, or after replacing layers, compile with a new optimizer, e.g. "
                "model.compile(optimizer='adam', ...)")
        return i

    def check_variables(self, variables):
        """Raise ValueError unless every variable has slots here that fit it
        (same shape and dtype) -- checked before any kernel touches them."""
        for v in variables:
            i = self._index(v)
            for name, arr in self.slots[i].items():
                if arr.shape != v.shape or arr.dtype != v.dtype:
                    raise ValueError(
                        f"{type(self).__name__}: slot '{name}' of variable "
                        f"'{getattr(v, 'path', 'array')}' has "
                        f"shape {arr.shape} {arr.dtype}, the variable {v.shape} {v.dtype}; "
                        "compile with a new optimizer")

    def slots_for(self, var):
        """(s1, s2, s3) of ``var`` as the kernels take them (None where unused)."""
        return self.slot_triplet(self._index(var))

    @property
    def variables(self):
        """The optimizer's state arrays: the slots of every variable."""
        return [arr for slots in self.slots for arr in slots.values()]

    def count_params(self):
        # Keras also counts its iterations and learning_rate variables.
        """Number of optimizer state values (slots + iterations + learning rate)."""
        return sum(a.size for a in self.variables) + (2 if self.built else 0)

    def slot_triplet(self, i):
        """(s1, s2, s3) of variable i as the kernel takes them (None if unused)."""
        names = self.slot_names_for_kernel()
        return tuple(self.slots[i][n] if n else None for n in names)

    def slot_names_for_kernel(self):
        """The slot names in the order the update kernel takes them (None if unused)."""
        return (None, None, None)

    @property
    def needs_python_step(self):
        """True when clipping or weight decay is on (the fused loop does neither)."""
        return any(v is not None for v in (self.clipnorm, self.clipvalue,
                                           self.global_clipnorm, self.weight_decay))

    def _clip(self, grads):
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue).astype(g.dtype) for g in grads]
        if self.clipnorm is not None:
            out = []
            for g in grads:
                n = float(np.sqrt((g.astype(np.float64) ** 2).sum()))
                out.append(g * g.dtype.type(self.clipnorm / n) if n > self.clipnorm else g)
            return out
        if self.global_clipnorm is not None:
            n = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
            if n > self.global_clipnorm:
                return [g * g.dtype.type(self.global_clipnorm / n) for g in grads]
        return grads

    def apply(self, grads, variables=None):
        """One update of ``variables`` (Variables or arrays, in place) from ``grads``.

        Example (a training step by hand)::

            opt = keras.optimizers.SGD(learning_rate=0.1)
            dense.backward(dL_dout)
            opt.apply(dense.grads, dense.weights)     # w -= 0.1 * g for kernel and bias
        """
        grads = list(grads)
        if variables is None:
            variables = self._variables
        variables = list(variables)
        if len(grads) != len(variables):
            raise ValueError(f"{len(grads)} gradients for {len(variables)} variables")
        if not self.built:
            self.build(variables)
        self.check_variables(variables)
        grads = self._clip(grads)
        K = kernels()
        for k, (g, v) in enumerate(zip(grads, variables)):
            w = v.value if hasattr(v, "value") else v
            if g.shape != w.shape:
                raise ValueError(f"gradient {k} has shape {g.shape}, variable {w.shape}")
            i = self._index(v)
            if self.weight_decay:
                w -= w * w.dtype.type(self.weight_decay * self.learning_rate)
            g = np.ascontiguousarray(g, dtype=w.dtype)
            self.update_step(K, w.reshape(-1), g.reshape(-1),
                             [None if s is None else s.reshape(-1) for s in self.slot_triplet(i)])
        self.iterations += 1

    def apply_gradients(self, grads_and_vars):
        """Keras's spelling of ``apply``: takes ``[(grad, variable), ...]``."""
        grads, variables = zip(*grads_and_vars)
        self.apply(grads, variables)

    def update_step(self, K, w, g, slots):
        """The subclass's update rule for one flat weight array (the kernel call)."""
        raise NotImplementedError

    def kernel_params(self):
        """Hyper-parameters for the fused training loop's OptParams."""
        raise NotImplementedError

    def get_config(self):
        """The hyper-parameters as a dict (``from_config`` rebuilds the optimizer)."""
        return {"name": self.name, "learning_rate": self.learning_rate,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        """A new optimizer (fresh state) from a ``get_config()`` dict."""
        return cls(**config)
