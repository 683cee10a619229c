"""What a layer hands the compiled training loop: a ``PlanEntry`` with a list of ``Param``.

``Layer.plan_entry(ctx)`` returns one of these (``nncore/models/plan.py``
collects them into a step plan).  The entry says *which kernel* runs the
layer (``kind``) and *what it computes on* (its parameters, its geometry);
the executors -- the compiled loop ``src_cython/training.pyx`` and its NumPy
twin ``nncore/ops/training.py`` -- treat every parameter alike::

    for p in entry.params:                     (any number, any shape)
        penalty += l1 * sum|p| + l2 * sum p^2  (if p.reg)
        p.grad  += l1 * sign(p) + 2 * l2 * p   (if p.reg)
        optimizer update of p.value from p.grad and p.slots   (if p.trained)

so a layer kind with three weights (an LSTM) or one (an Embedding) needs no
change in either executor's update, penalty or slot checks.

Kinds:

* the built-in kernels: ``dense``, ``conv2d``, ``maxpool``, ``avgpool``,
  ``dropout``, ``activation`` -- their forward/backward run in C inside the
  loop (``dense``/``conv2d`` read their kernel as ``params[0]`` and their
  bias, if any, as ``params[1]``);
* ``layer``: any other layer kind.  The loop runs the layer's own
  ``forward``/``backward`` (its compiled per-batch kernels, or its NumPy
  twin) on the loop's buffers, holding the GIL, on one thread; the update and
  penalty of its parameters are the loop's, like everyone's.  A new layer
  kind trains on the compiled loop this way before it has a fused kernel of
  its own (``PlanEntry.run_layer``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Param", "PlanEntry", "GEOMETRY_KEYS"]

#: the per-image geometry of the image kinds: input H, W, C, window KH x KW,
#: strides, padding before (top, left), output OH x OW (conv2d: + filters)
GEOMETRY_KEYS = ("in_h", "in_w", "in_c", "kh", "kw", "sh", "sw", "pt", "pl", "oh", "ow")


@dataclass
class Param:
    """One weight as the loop sees it: the live arrays and what to do with them.

    ``value``/``grad``: the Variable's array and its gradient (same shape,
    C-contiguous); ``slots``: the optimizer's three slot arrays for it (None
    where the optimizer keeps none); ``trained``: does the optimizer update
    it; ``l1``/``l2``: its regularizer's factors, ``reg``: has it one."""
    name: str
    value: np.ndarray
    grad: np.ndarray
    slots: list = field(default_factory=lambda: [None, None, None])
    trained: bool = False
    reg: bool = False
    l1: float = 0.0
    l2: float = 0.0

    @classmethod
    def of(cls, ctx, var, grad, regularizer=None):
        """The Param of a layer's Variable ``var`` (gradient array ``grad``):
        its optimizer slots from ``ctx`` (None: not trained) and its
        regularizer's factors."""
        slots = ctx.slots(var)
        r = regularizer
        return cls(name=var.name, value=var.value, grad=grad,
                   slots=list(slots or (None,) * 3), trained=slots is not None,
                   reg=r is not None, l1=float(r.l1) if r else 0.0,
                   l2=float(r.l2) if r else 0.0)


@dataclass
class PlanEntry:
    """One layer's part of a step plan (see the module docstring).

    ``kind``: which kernel runs it; ``layer``: the live layer; ``params``:
    its weights (list of :class:`Param`); ``act``: activation name (dense,
    conv2d, activation); ``logits``: the last layer computing logits for the
    loss (skip the activation); ``rate``/``seed``/``step``: Dropout's (``step``
    counts the masks drawn: the plan writes it back to the layer after each
    run); geometry (``GEOMETRY_KEYS``, ``filters``): the image kinds'.  Set
    by the plan: ``n_in``/``n_out`` (values per sample), ``backprop`` (the
    backward pass reaches this layer) and ``need_dx`` (it must pass a
    gradient down)."""
    kind: str
    layer: object = None
    params: list = field(default_factory=list)
    act: str = "linear"
    logits: int = 0
    rate: float = 0.0
    seed: int = 0
    step: int | None = None
    in_h: int | None = None
    in_w: int | None = None
    in_c: int | None = None
    kh: int | None = None
    kw: int | None = None
    sh: int | None = None
    sw: int | None = None
    pt: int | None = None
    pl: int | None = None
    oh: int | None = None
    ow: int | None = None
    filters: int | None = None
    n_in: int | None = None
    n_out: int | None = None
    backprop: int = 0
    need_dx: int = 0
    #: the layer just below, when this entry computes it too (its input is
    #: then that layer's input, and its entry is dropped from the plan)
    fused_below: object = None

    # the kernel and bias of the kinds that have them (dense, conv2d)
    @property
    def W(self):
        return self.params[0].value if self.params else None

    @property
    def dW(self):
        return self.params[0].grad if self.params else None

    @property
    def b(self):
        return self.params[1].value if len(self.params) > 1 else None

    @property
    def db(self):
        return self.params[1].grad if len(self.params) > 1 else None

    @property
    def trained(self):
        """Does the optimizer update any of this entry's parameters?"""
        return any(p.trained for p in self.params)

    def geometry(self):
        """The image geometry as a dict (the image kinds)."""
        return {k: getattr(self, k) for k in GEOMETRY_KEYS}

    @classmethod
    def run_layer(cls, layer, ctx, regularizers=None):
        """An entry that runs ``layer``'s own forward/backward inside the
        loop (kind ``layer``); its weights become the entry's params (the
        optimizer's slots from ``ctx``; ``regularizers``: one per weight, or
        None) and the loop updates them.  The layer must map a
        (batch, *input_shape[1:]) array to (batch, *output_shape[1:])."""
        regs = list(regularizers) if regularizers is not None else [None] * len(layer.weights)
        params = [Param.of(ctx, v, g, r) for v, g, r in zip(layer.weights, layer.grads, regs)]
        return cls(kind="layer", layer=layer, params=params,
                   logits=int(ctx.is_last and ctx.path == "logits"))

    # ---------------------------------------------- kind "layer": the calls
    def layer_forward(self, rows, out_rows, training=True):
        """Forward of a ``layer`` entry on flat rows: ``out_rows[:] = f(rows)``."""
        layer = self.layer
        x = rows.reshape((rows.shape[0],) + tuple(layer.input_shape[1:]))
        out = layer.forward(x, training=training, logits=bool(self.logits))
        out_rows[...] = np.asarray(out).reshape(out_rows.shape)

    def layer_backward(self, gout_rows, dx_rows):
        """Backward of a ``layer`` entry: fills the layer's gradients (the
        params' ``grad`` arrays) and, when ``dx_rows`` is given, dL/dx."""
        layer = self.layer
        g = gout_rows.reshape((gout_rows.shape[0],) + tuple(layer.output_shape[1:]))
        # a layer that asks for its dL/dx array (Layer._input_grad_array) may
        # write it straight into the loop's buffer: offered for this call only
        st = layer._state
        target = None
        if dx_rows is not None:
            target = dx_rows.reshape((dx_rows.shape[0],) + tuple(layer.input_shape[1:]))
        st.dx_target = target
        try:
            dx = layer.backward(g, from_logits=bool(self.logits),
                                need_input_grad=dx_rows is not None)
        finally:
            st.dx_target = None
        # a layer may hand back new gradient arrays instead of filling its own
        for p, grad in zip(self.params, layer.grads):
            if grad is not p.grad:
                p.grad[...] = grad
        if dx_rows is not None and dx is not target:
            dx_rows[...] = np.asarray(dx).reshape(dx_rows.shape)
