"""Recurrent cells and backpropagation through time, in NumPy (the readable twins).

Three cells, with Keras 3's equations, weight layouts and gate orders.  For an
input sequence ``x`` of shape ``(batch, T, features)`` and ``units`` = u:

SimpleRNN (weights W (F, u), U (u, u), b (u,))::

    h_t = act(x_t W + h_{t-1} U + b)                       act: tanh by default

LSTM (W (F, 4u), U (u, 4u), b (4u,); column blocks in the order i, f, c, o)::

    z   = x_t W + h_{t-1} U + b          split into z_i, z_f, z_c, z_o
    i   = ra(z_i)   f = ra(z_f)   o = ra(z_o)     ra: sigmoid by default
    g   = act(z_c)                                act: tanh by default
    c_t = f * c_{t-1} + i * g
    h_t = o * act(c_t)

GRU (W (F, 3u), U (u, 3u); blocks z, r, h)::

    reset_after=True (Keras's default; bias (2, 3u): input row b_x, recurrent row b_h)
        xz, xr, xh = x_t W + b_x          hz, hr, hh = h_{t-1} U + b_h
        z = ra(xz + hz)   r = ra(xr + hr)   n = act(xh + r * hh)
    reset_after=False (bias (3u,), on the input side only)
        xz, xr, xh = x_t W + b            hz, hr = h_{t-1} U[:, :2u]
        z = ra(xz + hz)   r = ra(xr + hr)   n = act(xh + (r * h_{t-1}) U[:, 2u:])
    h_t = z * h_{t-1} + (1 - z) * n

Dropout (Keras 3's masks, drawn once per batch and the same at every step;
each holds 0 or 1/(1 - rate)).  ``dp`` has shape (G, batch, F) and
``rdp`` (G, batch, u), one mask per gate block (G = 1, 4, 3): the input of
gate block k is ``x_t * dp[k]`` and the recurrent input ``h_{t-1} * rdp[k]``.
Keras draws separate masks per gate when ``recurrent_dropout`` > 0 (its
"implementation 1") and one mask shared by all gates otherwise; the layer
builds ``dp``/``rdp`` accordingly.  The carried state itself (c_{t-1}, and
h_{t-1} in GRU's final blend) is never dropped, as in Keras.

Step mask ``mask`` (batch, T) of booleans: at a masked step the state keeps
its previous value and the output repeats the previous output (zeros before
the first unmasked step), as Keras's ``rnn`` loop does.

Backpropagation through time walks the steps backwards carrying dL/dstate;
the gate pre-activation gradients of all steps are collected, then
``dW = sum_t (x_t * dp)^T dZ_t`` and ``dx_t = (dZ_t W^T) * dp`` are computed
at once, as one product over batch*T rows.
"""
from __future__ import annotations

import numpy as np

__all__ = ["recurrent_forward", "recurrent_backward"]

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
#: activations a recurrent cell may use (their derivative follows from their output)
ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")
#: the codes the compiled time loop (src_cython/recurrent.pyx) knows them by
CELL_CODES = {"simple_rnn": 0, "lstm": 1, "gru": 2}
ACT_CODES = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3}
_CELL_NAMES = {v: k for k, v in CELL_CODES.items()}
_ACT_NAMES = {v: k for k, v in ACT_CODES.items()}


def activate(name, z):
    """``name``(z) for the cell activations."""
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        # 1 / (1 + e^-z), written with e = exp(-|z|) so exp never overflows
        e = np.exp(-np.abs(z))
        r = 1.0 / (1.0 + e)
        return np.where(z >= 0, r, e * r)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "linear":
        return z.copy()
    raise ValueError(f"recurrent activation {name!r} is not supported "
                     f"(supported: {', '.join(ACTIVATIONS)})")


def activation_grad(name, a):
    """d act / dz, written through the output ``a = act(z)``."""
    if name == "tanh":
        return 1.0 - a * a
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


def _blocks(M, G):
    """The G column blocks of M (views)."""
    u = M.shape[-1] // G
    return [M[..., k * u:(k + 1) * u] for k in range(G)]


def _gate_product(v, M, masks, G):
    """Concatenation over gate blocks k of ``(v * masks[k]) @ M_k`` (one product
    ``v @ M`` when there are no masks)."""
    if masks is None:
        return v @ M
    return np.concatenate([(v * masks[k]) @ Mk for k, Mk in enumerate(_blocks(M, G))],
                          axis=-1)


def _gate_product_t(dZ, M, masks, G):
    """The gradient of ``_gate_product`` with respect to ``v``: sum over k of
    ``(dZ_k @ M_k^T) * masks[k]``."""
    if masks is None:
        return dZ @ M.T
    return sum((dZk @ Mk.T) * masks[k]
               for k, (dZk, Mk) in enumerate(zip(_blocks(dZ, G), _blocks(M, G))))


def _gate_weight_grad(v, dZ, masks, G):
    """dL/dM for ``_gate_product(v, M, masks)``: column block k is
    ``(v * masks[k])^T dZ_k`` (v and dZ may have any number of leading axes)."""
    v2 = v.reshape(-1, v.shape[-1])
    dZ2 = dZ.reshape(-1, dZ.shape[-1])
    if masks is None:
        return v2.T @ dZ2
    return np.concatenate([(v * masks[k]).reshape(v2.shape).T @ dZk
                           for k, dZk in enumerate(_blocks(dZ2, G))], axis=-1)


# ------------------------------------------------------------------ cells
# Each step function takes the input projection of this step ``xw`` (x_t W +
# input bias, with dropout), the previous states and the recurrent weights,
# and returns the new states (the first is the output h) and what its
# backward needs.  Each backward step takes dL/d(new states) and returns
# dL/d(xw), dL/d(previous states) and adds into the recurrent gradients.

def _simple_step(xw, states, U, b_rec, rdp, opt):
    h = states[0]
    a = activate(opt["activation"], xw + _gate_product(h, U, rdp, 1))
    return [a], (h, a)


def _simple_step_back(cache, d_new, U, rdp, opt, dU, db_rec):
    h, a = cache
    dz = d_new[0] * activation_grad(opt["activation"], a)
    dU += _gate_weight_grad(h, dz, rdp, 1)
    return dz, [_gate_product_t(dz, U, rdp, 1)]


def _lstm_step(xw, states, U, b_rec, rdp, opt):
    h, c = states
    z = xw + _gate_product(h, U, rdp, 4)
    zi, zf, zc, zo = _blocks(z, 4)
    ra, act = opt["recurrent_activation"], opt["activation"]
    i, f, o = activate(ra, zi), activate(ra, zf), activate(ra, zo)
    g = activate(act, zc)
    c_new = f * c + i * g
    ac = activate(act, c_new)
    h_new = o * ac
    return [h_new, c_new], (h, c, i, f, g, o, ac)


def _lstm_step_back(cache, d_new, U, rdp, opt, dU, db_rec):
    h, c, i, f, g, o, ac = cache
    dh, dc = d_new
    ra, act = opt["recurrent_activation"], opt["activation"]
    dc = dc + dh * o * activation_grad(act, ac)
    dz = np.concatenate([dc * g * activation_grad(ra, i), dc * c * activation_grad(ra, f),
                         dc * i * activation_grad(act, g),
                         dh * ac * activation_grad(ra, o)], axis=-1)
    dU += _gate_weight_grad(h, dz, rdp, 4)
    return dz, [_gate_product_t(dz, U, rdp, 4), dc * f]


def _gru_step(xw, states, U, b_rec, rdp, opt):
    h = states[0]
    ra, act = opt["recurrent_activation"], opt["activation"]
    xz, xr, xh = _blocks(xw, 3)
    u = h.shape[-1]
    if opt["reset_after"]:
        inner = _gate_product(h, U, rdp, 3)
        if b_rec is not None:
            inner = inner + b_rec
        hz, hr, hh = _blocks(inner, 3)
        z, r = activate(ra, xz + hz), activate(ra, xr + hr)
        n = activate(act, xh + r * hh)
        cache = (h, z, r, n, hh)
    else:
        inner = _gate_product(h, U[:, :2 * u], None if rdp is None else rdp[:2], 2)
        hz, hr = _blocks(inner, 2)
        z, r = activate(ra, xz + hz), activate(ra, xr + hr)
        h_h = h if rdp is None else h * rdp[2]
        rh = r * h_h
        n = activate(act, xh + rh @ U[:, 2 * u:])
        cache = (h, z, r, n, rh)
    h_new = z * h + (1 - z) * n
    return [h_new], cache


def _gru_step_back(cache, d_new, U, rdp, opt, dU, db_rec):
    ra, act = opt["recurrent_activation"], opt["activation"]
    dh_new = d_new[0]
    h, z, r, n, extra = cache
    u = h.shape[-1]
    dz = dh_new * (h - n) * activation_grad(ra, z)
    dn = dh_new * (1 - z) * activation_grad(act, n)
    dh = dh_new * z
    if opt["reset_after"]:
        hh = extra
        dr = dn * hh * activation_grad(ra, r)
        dinner = np.concatenate([dz, dr, dn * r], axis=-1)
        dU += _gate_weight_grad(h, dinner, rdp, 3)
        if db_rec is not None:
            db_rec += dinner.sum(axis=0)
        dh = dh + _gate_product_t(dinner, U, rdp, 3)
    else:
        rh = extra
        Uh = U[:, 2 * u:]
        drh = dn @ Uh.T
        dU[:, 2 * u:] += rh.T @ dn
        h_h = h if rdp is None else h * rdp[2]
        dr = drh * h_h * activation_grad(ra, r)
        dzr = np.concatenate([dz, dr], axis=-1)
        zr_masks = None if rdp is None else rdp[:2]
        dU[:, :2 * u] += _gate_weight_grad(h, dzr, zr_masks, 2)
        dh = dh + _gate_product_t(dzr, U[:, :2 * u], zr_masks, 2)
        dh_h = drh * r
        dh = dh + (dh_h if rdp is None else dh_h * rdp[2])
    return np.concatenate([dz, dr, dn], axis=-1), [dh]


_STEPS = {"simple_rnn": (_simple_step, _simple_step_back),
          "lstm": (_lstm_step, _lstm_step_back),
          "gru": (_gru_step, _gru_step_back)}


def _split_bias(cell, b, opt):
    """(input-side bias, recurrent-side bias) of a cell's bias array (or None)."""
    if b is None:
        return None, None
    if cell == "gru" and opt.get("reset_after", True):
        return b[0], b[1]
    return b, None


# ------------------------------------------------------------------ the loop
def rnn_forward(cell, x, W, U, b, initial_state, *, activation="tanh",
                recurrent_activation="sigmoid", reset_after=True, mask=None,
                dp=None, rdp=None):
    """Run ``cell`` ('simple_rnn', 'lstm', 'gru') over the whole sequence.

    Args:
        x: (batch, T, F).  W, U, b: the cell's kernel, recurrent kernel and
            bias (None without bias), Keras layouts (module docstring).
        initial_state: list of (batch, u) arrays ([h] or [h, c] for LSTM).
        mask: (batch, T) booleans or None.  dp, rdp: dropout masks or None.

    Returns ``(outputs, states, cache)``: outputs (batch, T, u) -- the output
    at every step, in processing order --, the final states, and what
    ``rnn_backward`` needs.
    """
    G = GATES[cell]
    opt = dict(activation=activation, recurrent_activation=recurrent_activation,
               reset_after=reset_after)
    step = _STEPS[cell][0]
    b_in, b_rec = _split_bias(cell, b, opt)
    B, T, _ = x.shape
    u = U.shape[0]
    # input projection of all steps at once: (batch*T, F) . W
    XW = _gate_product(x, W, None if dp is None else dp[:, :, None, :], G)
    if b_in is not None:
        XW = XW + b_in
    states = [np.array(s, dtype=x.dtype) for s in initial_state]
    out = np.zeros((B, u), dtype=x.dtype)
    outputs = np.empty((B, T, u), dtype=x.dtype)
    caches = []
    for t in range(T):
        new, c = step(XW[:, t], states, U, b_rec, rdp, opt)
        caches.append(c)
        if mask is None:
            states, out = new, new[0]
        else:
            m = mask[:, t, None]
            states = [np.where(m, n_, s) for n_, s in zip(new, states)]
            out = np.where(m, new[0], out)
        outputs[:, t] = out
    cache = dict(cell=cell, opt=opt, x=x, W=W, U=U, b=b, mask=mask, dp=dp, rdp=rdp,
                 caches=caches, n_states=len(states))
    return outputs, states, cache


def rnn_backward(cache, d_outputs, d_states=None):
    """Backpropagation through time for ``rnn_forward``.

    Args:
        d_outputs: dL/d(outputs), (batch, T, u) (zeros except the last step
            when the layer returns only the last output).
        d_states: dL/d(final states) (list, or None for zeros).

    Returns ``(dx, dW, dU, db, d_initial_state)``; db is None without bias.
    Leaves ``cache["dh_norms"]``: ||dL/dh_t|| (over the batch) for every step t
    (in processing order).
    """
    cell, opt = cache["cell"], cache["opt"]
    G = GATES[cell]
    back = _STEPS[cell][1]
    x, W, U, b, mask = cache["x"], cache["W"], cache["U"], cache["b"], cache["mask"]
    dp, rdp = cache["dp"], cache["rdp"]
    B, T, _ = x.shape
    u = U.shape[0]
    dU = np.zeros_like(U)
    b_in, b_rec = _split_bias(cell, b, opt)
    db_rec = None if b_rec is None else np.zeros_like(b_rec)
    ds = [np.zeros((B, u), dtype=x.dtype) if d_states is None or d_states[k] is None
          else np.array(d_states[k], dtype=x.dtype) for k in range(cache["n_states"])]
    d_out = np.zeros((B, u), dtype=x.dtype)      # dL/d(output carried over masked steps)
    dXW = np.empty((B, T, G * u), dtype=x.dtype)
    dh_norms = np.empty(T)
    for t in range(T - 1, -1, -1):
        g = d_outputs[:, t] + d_out
        if mask is None:
            d_new = list(ds)
            d_new[0] = d_new[0] + g
            keep = None
        else:
            m = mask[:, t, None]
            d_new = [np.where(m, d, 0) for d in ds]
            d_new[0] = d_new[0] + np.where(m, g, 0)
            keep = [np.where(m, 0, d) for d in ds]
            d_out = np.where(m, 0, g)
        # ||dL/dh_t|| over the batch: how much the loss still reaches step t
        # (vanishing gradients show as a decay towards t = 0)
        dh_norms[t] = np.sqrt(np.sum(np.square(d_new[0], dtype=np.float64)))
        dxw, d_prev = back(cache["caches"][t], d_new, U, rdp, opt, dU, db_rec)
        dXW[:, t] = dxw
        ds = d_prev if keep is None else [a + k for a, k in zip(d_prev, keep)]
    dpx = None if dp is None else dp[:, :, None, :]
    dW = _gate_weight_grad(x, dXW, dpx, G)
    dx = _gate_product_t(dXW, W, dpx, G)
    db = None
    if b is not None:
        db_in = dXW.reshape(-1, G * u).sum(axis=0)
        db = db_in if b_rec is None else np.stack([db_in, db_rec])
    cache["dh_norms"] = dh_norms
    cache["dXW"] = dXW
    return dx, dW, dU, db, ds


# ------------------------------------------------------------ buffer faces
# ``recurrent_forward`` / ``recurrent_backward`` are the backend's functions:
# the same arguments as the compiled time loop (src_cython/recurrent.pyx),
# which fills caller-owned buffers instead of building a list of per-step
# tuples.  Here they run ``rnn_forward`` / ``rnn_backward`` above and copy
# into / out of those buffers, so the kernel has a twin with its exact face:
#
#   Hp, Cp (B, T, u)   the state before each step (Cp: LSTM only)
#   Gt (B, T, G*u)     gate activations: SimpleRNN a; LSTM i, f, g, o; GRU z, r, n
#   Ex (B, T, u)       LSTM act(c_t); GRU reset_after hh; GRU reset_after=False r*h
#   XW (B, T, G*u)     the input projection x_t W (dropout applied, no bias)
#
# Dropout masks come as (1 or G, B, F) / (1 or G, B, u): one mask shared by
# every gate block, or one per block.

def _full_masks(m, G):
    if m is None:
        return None
    return np.broadcast_to(m, (G,) + m.shape[1:]) if m.shape[0] == 1 else m


def _join_bias(cell, b_in, b_rec, reset_after):
    if b_in is None:
        return None
    if cell == "gru" and reset_after:
        return np.stack([b_in, b_rec])
    return b_in


def _given_input(x, onehot, B, T, W, dp):
    """x, or with x None the one-hot rows whose positions ``onehot`` holds
    (flat (B*T + 1,), -1 for a zero row, last entry 1; see the kernel)."""
    if x is not None:
        return x
    F = W.shape[0]
    if onehot is None or onehot.shape != (B * T + 1,) or onehot[-1] != 1:
        raise ValueError("recurrent kernel: x is None but onehot holds no positions "
                         "(its last entry must be 1)")
    if dp is not None:
        raise ValueError("recurrent kernel: input dropout needs the input's values, "
                         "not the positions of its 1s")
    pos = onehot[:-1].astype(np.int64)
    bad = np.flatnonzero((pos < -1) | (pos >= F))
    if bad.size:
        raise ValueError(f"recurrent kernel: onehot[{bad[0]}] = {pos[bad[0]]} is not a "
                         f"position in 0..{F - 1} (or -1)")
    x = np.zeros((B * T, F), dtype=W.dtype)
    rows = np.flatnonzero(pos >= 0)
    x[rows, pos[rows]] = 1
    return x.reshape(B, T, F)


def recurrent_forward(cell, act, ract, reset_after, x, W, U, b_in, b_rec, h0, c0, mask,
                      dp, rdp, XW, outputs, Hp, Cp, hT, cT, Gt, Ex, xd, onehot=None):
    """The whole forward time loop, results written into the buffers above
    (``cell``, ``act``, ``ract``: codes of CELL_CODES / ACT_CODES; ``mask``
    uint8 (B, T) or None; ``xd``, ``onehot``: the kernel's scratch, unused
    here: for one-hot rows of x the kernel looks rows of W up instead of
    multiplying, which gives the same XW = x . W).  x None: the input is
    one-hot and ``onehot`` holds the positions of its 1s (``_given_input``)."""
    x = _given_input(x, onehot, outputs.shape[0], outputs.shape[1], W, dp)
    name = _CELL_NAMES[cell]
    G = GATES[name]
    u = U.shape[0]
    dpf, rdpf = _full_masks(dp, G), _full_masks(rdp, G)
    states0 = [h0] if name != "lstm" else [h0, c0]
    outs, states, cache = rnn_forward(
        name, x, W, U, _join_bias(name, b_in, b_rec, reset_after), states0,
        activation=_ACT_NAMES[act], recurrent_activation=_ACT_NAMES[ract],
        reset_after=bool(reset_after), mask=None if mask is None else mask.astype(bool),
        dp=dpf, rdp=rdpf)
    XW[...] = _gate_product(x, W, None if dpf is None else dpf[:, :, None, :], G)
    outputs[...] = outs
    hT[...] = states[0]
    if name == "lstm":
        cT[...] = states[1]
    for t, c in enumerate(cache["caches"]):
        Hp[:, t] = c[0]
        if name == "simple_rnn":
            Gt[:, t] = c[1]
        elif name == "lstm":
            Cp[:, t] = c[1]
            Gt[:, t] = np.concatenate(c[2:6], axis=-1)
            Ex[:, t] = c[6]
        else:
            Gt[:, t] = np.concatenate(c[1:4], axis=-1)
            Ex[:, t] = c[4][..., :u]


def recurrent_backward(cell, act, ract, reset_after, x, W, U, mask, dp, rdp, Hp, Cp, Gt,
                       Ex, d_outputs, dXW, dx, dW, dU, db_in, db_rec, dh_norms, xd,
                       onehot=None):
    """Backpropagation through time from the buffers of ``recurrent_forward``.
    ``d_outputs`` (B, T, u), or (B, 1, u) for dL/d(last output) only; fills
    dXW, dx (unless None), dW, dU, db_in / db_rec (unless None) and dh_norms.
    x None: the positions in ``onehot`` are the input, as in forward."""
    x = _given_input(x, onehot, Hp.shape[0], Hp.shape[1], W, dp)
    name = _CELL_NAMES[cell]
    G = GATES[name]
    u = U.shape[0]
    B, T, _ = x.shape
    caches = []
    for t in range(T):
        g = [Gt[:, t, k * u:(k + 1) * u] for k in range(G)]
        if name == "simple_rnn":
            caches.append((Hp[:, t], g[0]))
        elif name == "lstm":
            caches.append((Hp[:, t], Cp[:, t], *g, Ex[:, t]))
        else:
            caches.append((Hp[:, t], *g, Ex[:, t]))
    if d_outputs.shape[1] != T:
        full = np.zeros((B, T, u), dtype=x.dtype)
        full[:, -1] = d_outputs[:, 0]
        d_outputs = full
    has_bias = db_in is not None
    b = None
    if has_bias:
        b = _join_bias(name, np.zeros(G * u, x.dtype), np.zeros(G * u, x.dtype), reset_after)
    cache = dict(cell=name, opt=dict(activation=_ACT_NAMES[act],
                                     recurrent_activation=_ACT_NAMES[ract],
                                     reset_after=bool(reset_after)),
                 x=x, W=W, U=U, b=b, mask=None if mask is None else mask.astype(bool),
                 dp=_full_masks(dp, G), rdp=_full_masks(rdp, G), caches=caches,
                 n_states=2 if name == "lstm" else 1)
    ddx, ddW, ddU, ddb, _ = rnn_backward(cache, d_outputs)
    dXW[...] = cache["dXW"]
    if dx is not None:
        dx[...] = ddx
    dW[...] = ddW
    dU[...] = ddU
    if has_bias:
        if name == "gru" and reset_after:
            db_in[...] = ddb[0]
            if db_rec is not None:
                db_rec[...] = ddb[1]
        else:
            db_in[...] = ddb
    dh_norms[...] = cache["dh_norms"]
