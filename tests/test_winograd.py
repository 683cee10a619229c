"""The convolution kernel's Winograd path (nn_winograd.h): 3x3 kernels with
stride 1 and at least 8 channels in and out -- the book's second layer --
computed by F(2x2, 3x3).  Forward, input gradient and weight gradient each
against the im2col twin, the definition, the NumPy Winograd twin, finite
differences and other thread counts; the path choice against the twin's."""
import numpy as np
import pytest

import nncore as keras
from nncore._ext import conv as KC
from nncore.ops import conv as TC

from test_conv import conv_args, conv_reference, numeric_grad, run_conv

# all 3x3 stride 1: odd and even sizes (a last tile half outside the
# image), both paddings, channels at the threshold and around the kernel's
# vector widths, more images than a weight-gradient group
WINOGRAD_CASES = [
    (5, 14, 14, 32, 3, 3, 64, (1, 1), "same"),    # the book's second layer
    (3, 13, 11, 9, 3, 3, 8, (1, 1), "valid"),
    (9, 7, 10, 8, 3, 3, 17, (1, 1), "same"),
    (2, 3, 3, 16, 3, 3, 8, (1, 1), "same"),       # one tile, mostly padding
    (2, 3, 4, 8, 3, 3, 40, (1, 1), "valid"),      # a 1 x 2 output
]


def test_path_choice_matches_twin():
    assert KC.WINOGRAD_MIN_CHANNELS == TC.WINOGRAD_MIN_CHANNELS
    for args in [(3, 3, 1, 1, 32, 64), (3, 3, 1, 1, 8, 8), (3, 3, 1, 1, 7, 64),
                 (3, 3, 1, 1, 64, 7), (3, 3, 2, 1, 32, 64), (3, 3, 1, 2, 32, 64),
                 (5, 5, 1, 1, 32, 64), (3, 2, 1, 1, 32, 64)]:
        assert KC.uses_winograd(*args) == TC.uses_winograd(*args), args
    assert KC.uses_winograd(3, 3, 1, 1, 32, 64)
    assert not KC.uses_winograd(3, 3, 2, 2, 32, 64)
    assert not KC.uses_winograd(3, 3, 1, 1, 7, 64)


@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_numpy_winograd_twin_equals_im2col(case):
    """The twin that spells out Winograd gives the im2col sums (float64)."""
    x, k, out_shape, geo = conv_args(case, np.float64)
    n, oh, ow, f = out_shape
    sh, sw, pt, pl = geo
    ref = run_conv(TC, x, k, out_shape, geo)
    np.testing.assert_allclose(TC.winograd_conv3x3(x, k, oh, ow, pt, pl), ref,
                               rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    dout = np.random.default_rng(5).standard_normal(out_shape)
    _, _, dx, _ = run_conv(TC, x, k, out_shape, geo, dout)
    np.testing.assert_allclose(TC.winograd_input_gradient(dout, k, x.shape[1], x.shape[2],
                                                          pt, pl),
                               dx, rtol=1e-12, atol=1e-12 * np.abs(dx).max())


@pytest.mark.parametrize("case", WINOGRAD_CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("act,with_bias", [("linear", False), ("relu", True),
                                           ("sigmoid", True), ("relu", False)])
def test_winograd_kernel_equals_twins(case, dtype, tol, act, with_bias):
    x, k, out_shape, geo = conv_args(case, dtype)
    assert KC.uses_winograd(*k.shape[:2], *geo[:2], k.shape[2], k.shape[3])
    rng = np.random.default_rng(1)
    dout = rng.standard_normal(out_shape).astype(dtype)
    bias = rng.standard_normal(out_shape[3]).astype(dtype) if with_bias else None
    r1 = run_conv(KC, x, k, out_shape, geo, dout, bias=bias, act=act)
    r2 = run_conv(TC, x, k, out_shape, geo, dout, bias=bias, act=act)
    for a, b in zip(r1[:3], r2[:3]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
    if with_bias:
        np.testing.assert_allclose(r1[3], r2[3], rtol=tol,
                                   atol=tol * np.abs(dout).sum(axis=(0, 1, 2)).max())
    if act == "linear":
        ref = conv_reference(x, k, *geo, *out_shape[1:3])
        np.testing.assert_allclose(r1[0], ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("case", [WINOGRAD_CASES[1], WINOGRAD_CASES[3]])
def test_winograd_gradients_finite_differences(case):
    x, k, out_shape, geo = conv_args(case, np.float64, seed=3)
    rng = np.random.default_rng(4)
    r = rng.standard_normal(out_shape)          # L = sum(r * tanh(conv(x, k) + b))
    b = rng.standard_normal(out_shape[3])
    x, k = x[:2], k * 0.3                       # keep tanh away from saturation
    r = r[:2]
    out_shape = (2,) + out_shape[1:]

    def loss():
        return float((run_conv(KC, x, k, out_shape, geo, bias=b, act="tanh") * r).sum())
    _, dk, dx, db = run_conv(KC, x, k, out_shape, geo, r, bias=b, act="tanh")
    np.testing.assert_allclose(dk, numeric_grad(loss, k), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-7)


def test_winograd_thread_count_bitwise_and_without_dx():
    x, k, out_shape, geo = conv_args((13, 14, 14, 32, 3, 3, 64, (1, 1), "same"), np.float32)
    rng = np.random.default_rng(2)
    dout = rng.standard_normal(out_shape).astype(np.float32)
    bias = rng.standard_normal(64).astype(np.float32)
    results = []
    for threads in (1, 2):
        keras.set_num_threads(threads)
        results.append(run_conv(KC, x, k, out_shape, geo, dout, bias=bias, act="relu"))
    _, dk_only, none, db_only = run_conv(KC, x, k, out_shape, geo, dout, with_dx=False,
                                         bias=bias, act="relu")
    assert none is None
    for a, b in zip(results[0], results[1]):
        assert np.array_equal(a, b)
    assert np.array_equal(dk_only, results[1][1])
    assert np.array_equal(db_only, results[1][3])


def test_workspace_sizes_agree_with_twin():
    for args in [(32, 14, 14, 3, 3, 32, 64), (5, 7, 7, 3, 3, 8, 8), (3, 5, 5, 3, 3, 4, 9)]:
        for backward in (False, True):
            assert (KC.conv2d_workspace_size(*args, backward=backward, threads=2)
                    == TC.conv2d_workspace_size(*args, backward=backward, threads=2))
    with pytest.raises(ValueError, match="workspace"):
        x, k, out_shape, geo = conv_args(WINOGRAD_CASES[0], np.float32)
        # room for im2col only: the Winograd path must refuse, not overrun
        n, oh, ow, f = out_shape
        small = np.empty(2 * oh * ow * 9 * 32, np.float32)
        KC.conv2d_forward(x, k, None, np.empty(out_shape, np.float32), small, "linear", *geo)


def test_book_cnn_layer_feature_maps_on_winograd_path():
    """The second conv layer of a model (Winograd path) gives the
    definition's feature maps through the functional API."""
    model = keras.Sequential([
        keras.Input(shape=(12, 12, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
    ])
    x = np.random.default_rng(0).random((2, 12, 12, 1)).astype(np.float32)
    first = keras.Model(model.inputs[0], model.layers[0].output).predict(x, verbose=0)
    maps = keras.Model(model.inputs[0], model.layers[1].output).predict(x, verbose=0)
    k, b = (w.numpy() if hasattr(w, "numpy") else np.asarray(w)
            for w in model.layers[1].weights)
    ref = np.maximum(conv_reference(first, k, 1, 1, 1, 1, 12, 12) + b, 0)
    np.testing.assert_allclose(maps, ref, rtol=1e-5, atol=1e-5)
