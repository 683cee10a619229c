"""The convolution kernel's special paths: one input channel computed
directly (nn_conv1c.h, no im2col) and the vectorised bias + relu epilogue
(nn_bias_relu.h).  Each against the NumPy twin, the definition, finite
differences and itself at other thread counts."""
import numpy as np
import pytest

import nncore as keras
from nncore._ext import conv as KC
from nncore.ops import conv as TC

from test_conv import conv_args, conv_reference, numeric_grad, run_conv

# one input channel; F chosen around the kernel's blocks of filters (32
# floats / 16 doubles with AVX-512, fewer on narrower machines): below a
# block, exactly one, one plus a ragged tail, several
ONE_CHANNEL_CASES = [
    (3, 28, 28, 1, 3, 3, 32, (1, 1), "same"),    # the book's first layer
    (2, 7, 9, 1, 3, 2, 5, (1, 1), "valid"),
    (5, 9, 8, 1, 3, 3, 33, (2, 1), "same"),
    (2, 11, 6, 1, 5, 5, 40, (2, 3), "same"),
    (9, 6, 13, 1, 2, 3, 64, (1, 1), "valid"),    # more images than a dW group
    (2, 4, 4, 1, 4, 4, 16, (1, 1), "same"),      # every pixel a border pixel
    # 3x3 stride 1 runs the weight gradient pixel by pixel on a zero-padded
    # copy: filters after the last whole vector block, several dW groups,
    # fewer filters than one block (the general loop), a 1-row image
    (10, 9, 7, 1, 3, 3, 37, (1, 1), "valid"),
    (3, 5, 6, 1, 3, 3, 8, (1, 1), "same"),
    (2, 1, 5, 1, 3, 3, 48, (1, 1), "same"),
]


def _bias_dout(out_shape, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(out_shape[3]).astype(dtype),
            rng.standard_normal(out_shape).astype(dtype))


@pytest.mark.parametrize("case", ONE_CHANNEL_CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_one_channel_direct_kernel_equals_twin_and_definition(case, dtype, tol, act,
                                                              with_bias):
    x, k, out_shape, geo = conv_args(case, dtype)
    bias, dout = _bias_dout(out_shape, dtype)
    bias = bias if with_bias else None
    r1 = run_conv(KC, x, k, out_shape, geo, dout, bias=bias, act=act)
    r2 = run_conv(TC, x, k, out_shape, geo, dout, bias=bias, act=act)
    for a, b in zip(r1, r2):
        if b is None:
            assert a is None
            continue
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(np.abs(b).max(), 1))
    ref = conv_reference(x, k, *geo, *out_shape[1:3])
    lin = run_conv(KC, x, k, out_shape, geo)
    np.testing.assert_allclose(lin, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("case", ONE_CHANNEL_CASES[:3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_bias_relu_is_bitwise_relu_of_linear_plus_bias(case, dtype):
    # the epilogue must do exactly "sum, + b, relu" in that order
    x, k, out_shape, geo = conv_args(case, dtype)
    bias, _ = _bias_dout(out_shape, dtype)
    lin = run_conv(KC, x, k, out_shape, geo)
    z = lin + bias
    expected = np.where(z < 0, dtype(0), z)
    got = run_conv(KC, x, k, out_shape, geo, bias=bias, act="relu")
    assert np.array_equal(got, expected)
    got_lin = run_conv(KC, x, k, out_shape, geo, bias=bias, act="linear")
    assert np.array_equal(got_lin, z)


@pytest.mark.parametrize("channels", [1, 3])
def test_relu_keeps_nan_like_the_generic_kernel(channels):
    x, k, out_shape, geo = conv_args((2, 6, 6, channels, 3, 3, 33, (1, 1), "same"),
                                     np.float32)
    x[0, 2, 3, 0] = np.nan
    out = run_conv(KC, x, k, out_shape, geo, act="relu")
    lin = run_conv(KC, x, k, out_shape, geo)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(lin))
    assert np.isnan(out).any()


@pytest.mark.parametrize("case", [ONE_CHANNEL_CASES[0], ONE_CHANNEL_CASES[4],
                                  ONE_CHANNEL_CASES[6]])
def test_one_channel_thread_count_bitwise_and_dx_does_not_change_dk(case):
    case = (13,) + case[1:]          # several weight-gradient groups
    x, k, out_shape, geo = conv_args(case, np.float32)
    bias, dout = _bias_dout(out_shape, np.float32)
    results, before = [], keras.get_num_threads()
    try:
        for threads in (1, 2, 3):
            keras.set_num_threads(threads)
            results.append(run_conv(KC, x, k, out_shape, geo, dout, bias=bias,
                                    act="relu"))
            results.append(run_conv(KC, x, k, out_shape, geo, dout, bias=bias,
                                    act="relu", with_dx=False))
    finally:
        keras.set_num_threads(before)
    first = results[0]
    for r in results[1:]:
        for i in (0, 1, 3):        # out, dk, db: with or without dx, any threads
            assert np.array_equal(r[i], first[i])
        if r[2] is not None:
            assert np.array_equal(r[2], first[2])


@pytest.mark.parametrize("case", [ONE_CHANNEL_CASES[1], ONE_CHANNEL_CASES[3]])
def test_one_channel_gradients_finite_differences(case):
    x, k, out_shape, geo = conv_args(case, np.float64, seed=3)
    bias, r = _bias_dout(out_shape, np.float64, seed=4)

    def loss():
        return float((run_conv(KC, x, k, out_shape, geo, bias=bias, act="tanh") * r).sum())
    _, dk, dx, db = run_conv(KC, x, k, out_shape, geo, r, bias=bias, act="tanh")
    np.testing.assert_allclose(dk, numeric_grad(loss, k), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(loss, bias), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ max pooling
@pytest.mark.parametrize("shape,pool", [((3, 28, 28, 32), (2, 2)), ((2, 6, 8, 5), (3, 2)),
                                        ((2, 7, 7, 3), (1, 7)), ((4, 4, 4, 1), (2, 2))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_tiled_backward_is_bitwise_the_scatter(shape, pool, dtype):
    rng = np.random.default_rng(7)
    # few distinct values: many ties; signed zeros in the gradient
    x = rng.integers(-2, 3, shape).astype(dtype)
    n, h, w, c = shape
    out_shape = (n, h // pool[0], w // pool[1], c)
    out = np.empty(out_shape, dtype)
    arg = np.empty(out_shape, np.int32)
    KC.maxpool2d_forward(x, out, arg, *pool, *pool, 0, 0)
    out2, arg2 = np.empty_like(out), np.empty_like(arg)
    TC.maxpool2d_forward(x, out2, arg2, *pool, *pool, 0, 0)
    assert np.array_equal(out, out2) and np.array_equal(arg, arg2)
    g = rng.standard_normal(out_shape).astype(dtype)
    g[g < -1] = -0.0
    scatter, tiled, twin = (np.full(shape, np.nan, dtype) for _ in range(3))
    KC.maxpool2d_backward(g, arg, scatter)                 # no geometry: clear + scatter
    KC.maxpool2d_backward(g, arg, tiled, *pool, *pool, 0, 0)
    TC.maxpool2d_backward(g, arg, twin, *pool, *pool, 0, 0)
    assert np.array_equal(tiled, scatter)
    assert np.array_equal(np.signbit(tiled), np.signbit(scatter))
    assert np.array_equal(tiled, twin)


def test_maxpool_inside_path_keeps_first_value_against_nan():
    # the window's first value is kept unless something is strictly greater:
    # NaN first stays, NaN later never wins
    x = np.array([[np.nan, 1], [2, 3]], np.float32).reshape(1, 2, 2, 1)
    for mod in (KC, TC):
        out = np.empty((1, 1, 1, 1), np.float32)
        arg = np.empty((1, 1, 1, 1), np.int32)
        mod.maxpool2d_forward(x, out, arg, 2, 2, 2, 2, 0, 0)
        assert np.isnan(out[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 0
    y = np.array([[1, np.nan], [0, 3]], np.float32).reshape(1, 2, 2, 1)
    out = np.empty((1, 1, 1, 1), np.float32)
    arg = np.empty((1, 1, 1, 1), np.int32)
    KC.maxpool2d_forward(y, out, arg, 2, 2, 2, 2, 0, 0)
    assert out[0, 0, 0, 0] == 3 and arg[0, 0, 0, 0] == 3


# ------------------------------------------------------------------ col2im
@pytest.mark.parametrize("case", [(2, 7, 6, 3, 3, 3, 1, (1, 1), "same"),
                                  (2, 9, 8, 2, 3, 2, 1, (2, 3), "same"),
                                  (3, 6, 7, 5, 2, 3, 1, (1, 2), "valid"),
                                  (1, 5, 5, 33, 4, 4, 1, (3, 1), "same")])
def test_input_gradient_is_bitwise_the_row_major_scatter(case):
    # one filter: each dcols entry is a single product dz * w, exact in
    # float32 either way, so the only rounding left is the order in which
    # the entries are added back -- which must be the scatter's: output
    # pixels in row-major order
    x, k, out_shape, geo = conv_args(case, np.float32)
    sh, sw, pt, pl = geo
    dout = np.random.default_rng(8).standard_normal(out_shape).astype(np.float32)
    _, _, dx, _ = run_conv(KC, x, k, out_shape, geo, dout)
    n, h, w, c = x.shape
    kh, kw = k.shape[:2]
    expected = np.zeros_like(x)
    for a in range(out_shape[1]):
        for b in range(out_shape[2]):
            for i in range(kh):
                for j in range(kw):
                    ih, iw = a * sh - pt + i, b * sw - pl + j
                    if 0 <= ih < h and 0 <= iw < w:
                        expected[:, ih, iw, :] += dout[:, a, b, :1] * k[i, j, :, 0]
    assert np.array_equal(dx, expected)


def test_pooling_is_bitwise_the_same_for_any_thread_count():
    # a batch large enough for the pooling kernels to use the thread team
    rng = np.random.default_rng(9)
    x = rng.standard_normal((8, 32, 32, 33)).astype(np.float32)
    g = rng.standard_normal((8, 16, 16, 33)).astype(np.float32)
    results, before = [], keras.get_num_threads()
    try:
        for threads in (1, 2, 3):
            keras.set_num_threads(threads)
            out = np.empty(g.shape, np.float32)
            arg = np.empty(g.shape, np.int32)
            KC.maxpool2d_forward(x, out, arg, 2, 2, 2, 2, 0, 0)
            dx = np.empty_like(x)
            KC.maxpool2d_backward(g, arg, dx, 2, 2, 2, 2, 0, 0)
            avg = np.empty(g.shape, np.float32)
            KC.avgpool2d_forward(x, avg, 3, 3, 2, 2, 1, 1)
            dxa = np.empty_like(x)
            KC.avgpool2d_backward(g, dxa, 3, 3, 2, 2, 1, 1)
            results.append((out, arg, dx, avg, dxa))
    finally:
        keras.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            assert np.array_equal(a, b)
