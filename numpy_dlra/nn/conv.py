"""Convolution and max pooling for the fixed-rank baseline's small CNN, channels last (NHWC, as Keras).

Same op contract as :mod:`numpy_dlra.nn.layers`. The convolution is "valid" (no padding), stride 1,
computed as one GEMM over the im2col matrix, which is built (and, in backward, folded back) by
kh * kw strided slice copies -- no Python loop over pixels, the same code on NumPy and CuPy.
The kernel is stored as Keras stores it and as the paper writes a kernel's shape (H x W x C_i x C_o,
in its remarks on other architectures): (kh, kw, C_in, C_out).
"""
from .backend import array_module


def _im2col(x, kh, kw):
    """x (B, H, W, C) -> columns (B, Ho, Wo, kh, kw, C), Ho = H - kh + 1, Wo = W - kw + 1."""
    xp = array_module(x)
    B, H, W, C = x.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    cols = xp.empty((B, Ho, Wo, kh, kw, C), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x[:, i:i + Ho, j:j + Wo, :]
    return cols


def _col2im(dcols, H, W):
    """The adjoint of :func:`_im2col`: dcols (B, Ho, Wo, kh, kw, C) summed back into (B, H, W, C)."""
    xp = array_module(dcols)
    B, Ho, Wo, kh, kw, C = dcols.shape
    dx = xp.zeros((B, H, W, C), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, i:i + Ho, j:j + Wo, :] += dcols[:, :, :, i, j, :]
    return dx


class Conv2D:
    """y[b, p, q, f] = sum_{i, j, c} x[b, p + i, q + j, c] K[i, j, c, f] + k_b[f] ("valid", stride 1).

    params: K (kh, kw, C, F), b (F,). x: (B, H, W, C); y: (B, H - kh + 1, W - kw + 1, F).
    With ``input_grad=False`` backward returns dx = None (the first layer never needs it).
    """

    def forward(self, params, x, *, training=False, rng=None):
        K, b = params["K"], params["b"]
        kh, kw, C, F = K.shape
        cols = _im2col(x, kh, kw)
        B, Ho, Wo = cols.shape[:3]
        y = cols.reshape(B * Ho * Wo, kh * kw * C) @ K.reshape(kh * kw * C, F)  # (B Ho Wo, khkwC) @ (khkwC, F)
        y += b
        return y.reshape(B, Ho, Wo, F), (cols, K, x.shape)

    def backward(self, dy, cache, *, input_grad=True):
        cols, K, xshape = cache
        kh, kw, C, F = K.shape
        d2 = dy.reshape(-1, F)  # (B Ho Wo, F)
        c2 = cols.reshape(d2.shape[0], -1)  # (B Ho Wo, kh kw C)
        grads = {"K": (c2.T @ d2).reshape(K.shape), "b": d2.sum(axis=0)}  # (kh kw C, B Ho Wo) @ (B Ho Wo, F)
        if not input_grad:
            return None, grads
        dcols = (d2 @ K.reshape(-1, F).T).reshape(cols.shape)  # (B Ho Wo, F) @ (F, kh kw C)
        return _col2im(dcols, xshape[1], xshape[2]), grads


class MaxPool2D:
    """2 x 2 max pooling, stride 2 (an odd last row or column is dropped, as Keras does).

    x: (B, H, W, C) -> y: (B, H // 2, W // 2, C). The gradient goes to one maximum per window (the
    first in row-major order when several are equal); the cache holds which.
    """

    def forward(self, params, x, *, training=False, rng=None):
        xp = array_module(x)
        B, H, W, C = x.shape
        H2, W2 = H // 2, W // 2
        win = x[:, :2 * H2, :2 * W2, :].reshape(B, H2, 2, W2, 2, C).transpose(0, 1, 3, 5, 2, 4)
        win = win.reshape(B, H2, W2, C, 4)  # the four entries of each window, last
        arg = win.argmax(axis=-1)  # (B, H2, W2, C)
        y = xp.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
        return y, (arg, x.shape)

    def backward(self, dy, cache, *, input_grad=True):
        arg, (B, H, W, C) = cache
        xp = array_module(dy)
        H2, W2 = H // 2, W // 2
        dwin = xp.zeros((B, H2, W2, C, 4), dtype=dy.dtype)
        xp.put_along_axis(dwin, arg[..., None], dy[..., None], axis=-1)
        dx = xp.zeros((B, H, W, C), dtype=dy.dtype)
        dx[:, :2 * H2, :2 * W2, :] = dwin.reshape(B, H2, W2, C, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(B, 2 * H2, 2 * W2, C)
        return dx, {}


class Flatten:
    """(B, H, W, C) -> (B, H W C), in row-major (Keras) order."""

    def forward(self, params, x, *, training=False, rng=None):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dy, cache, *, input_grad=True):
        return dy.reshape(cache), {}
