"""The fast forms of :mod:`numpy_dlra.nn.optim`: Adam's update and the gradient noise, blocked for the CPU's
cache and fused into one kernel per array on a GPU (:mod:`numpy_dlra.nn.kernels`).

Each function computes what its textbook form in :mod:`numpy_dlra.nn.optim` computes, with the same
operations in the same order, so the results are bitwise the same (tests/test_optim.py holds each fast
form to its reference): ``adam_step_`` is ``optim.adam_update`` in place over a dict of arrays,
``standard_normal`` and ``add_gradient_noise`` are ``optim.standard_normal`` and ``optim.gradient_noise``
without the temporaries, and ``scaled_add_`` is y <- b y + a x.
"""
import math
import sys

import numpy

from .backend import array_module
from .kernels import adam_kernel, noise_kernel

# Elementwise updates run over blocks of this many elements so that the several passes of one
# update stay in the CPU cache instead of streaming the whole array from memory each time. On a GPU
# every operation is a kernel launch: there the block is the whole array (:func:`_block`).
_BLOCK = 1 << 15


def _block(xp, size):
    """Elements per block: _BLOCK on the CPU (cache-sized), the whole array on a GPU."""
    return _BLOCK if xp is numpy else max(size, 1)

_LITTLE = sys.byteorder == "little"  # a uint64 array viewed as uint32 lists each word's low half first

# The draws of N(0, 1) are made in blocks of this many (optim.standard_normal's definition of the stream).
DRAW_BLOCK = 2 * _BLOCK


def adam_step_(params, grads, state, lr, beta1, beta2, eps):
    """Adam's update of every array in `params`, in place (``optim.adam_update`` on each); `grads` is left
    unchanged, ``state`` holds t (incremented here) and the moments m and v keyed like params."""
    state["t"] += 1
    t = state["t"]
    b1, b2 = beta1, beta2
    step_size = lr / (1.0 - b1**t)
    inv_bc2 = 1.0 / math.sqrt(1.0 - b2**t)
    for k, p in params.items():
        xp = array_module(p)
        fused = adam_kernel(xp)
        if fused is not None:  # a GPU: the same operations below in one launch (nn.kernels)
            dt = p.dtype.type
            fused(grads[k], dt(1.0 - b1), dt(1.0 - b2), dt(inv_bc2), dt(eps), dt(step_size),
                  p, state["m"][k], state["v"][k])
            continue
        m, v, g = state["m"][k].reshape(-1), state["v"][k].reshape(-1), grads[k].reshape(-1)
        pf = p.reshape(-1)
        dt, B = p.dtype.type, _block(xp, pf.size)
        tmp = xp.empty(min(B, pf.size), dtype=p.dtype)
        for s in range(0, pf.size, B):
            sl = slice(s, s + B)
            gb, mb, vb, pb = g[sl], m[sl], v[sl], pf[sl]
            tb = tmp[: gb.size]
            # m += (1 - b1) (g - m)
            xp.subtract(gb, mb, out=tb)
            tb *= dt(1.0 - b1)
            mb += tb
            # v += (1 - b2) (g^2 - v)
            xp.multiply(gb, gb, out=tb)
            tb -= vb
            tb *= dt(1.0 - b2)
            vb += tb
            # p -= step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
            xp.sqrt(vb, out=tb)
            tb *= dt(inv_bc2)
            tb += dt(eps)
            xp.divide(mb, tb, out=tb)
            tb *= dt(step_size)
            pb -= tb


def scaled_add_(y, a, x, b=1.0):
    """y <- b y + a x in place (y, x: arrays of one shape and dtype; a, b: scalars), block by block
    through a small scratch buffer, so that no array-sized temporary is made."""
    xp = array_module(y)
    if not y.flags.c_contiguous:  # y.reshape(-1) would be a copy: update y itself, with a temporary
        if b != 1.0:
            y *= y.dtype.type(b)
        y += x * y.dtype.type(a)
        return y
    yf, xf = y.reshape(-1), x.reshape(-1)
    dt, B = y.dtype.type, _block(xp, yf.size)
    tmp = xp.empty(min(B, yf.size), dtype=y.dtype)
    for s in range(0, yf.size, B):
        yb, tb = yf[s:s + B], tmp[: min(B, yf.size - s)]
        xp.multiply(xf[s:s + B], dt(a), out=tb)
        if b != 1.0:
            yb *= dt(b)
        yb += tb
    return y


def _box_muller(rng, k, dtype, xp, out):
    """Fill out[:k] with k draws of N(0, 1) (Box-Muller on 2 ceil(k/2) uniforms from `rng`)."""
    h = (k + 1) // 2  # pairs
    u = rng.random(2 * h, dtype=dtype)
    rho, theta = u[:h], u[h:]
    xp.subtract(1, rho, out=rho)  # (0, 1]: the log is finite
    xp.log(rho, out=rho)
    rho *= dtype.type(-2)
    xp.sqrt(rho, out=rho)  # rho = sqrt(-2 ln(1 - u1))
    theta *= dtype.type(2.0 * math.pi)
    xp.cos(theta[: k - h], out=out[h:k])
    out[h:k] *= rho[: k - h]
    xp.sin(theta, out=theta)
    xp.multiply(rho, theta, out=out[:h])


def standard_normal(rng, n, dtype, xp=None):
    """``optim.standard_normal`` (n draws of N(0, 1) by Box-Muller, in blocks of DRAW_BLOCK) in place.

    About 3x faster here than ``Generator.standard_normal``, whose ziggurat costs ~8.6 ns a draw: with
    1.4 M parameters that was most of a training step. Returns a 1-d array of `n` draws of `dtype`.
    """
    xp = xp or numpy
    dtype = numpy.dtype(dtype)
    out = xp.empty(n, dtype=dtype)
    for s in range(0, n, DRAW_BLOCK):
        _box_muller(rng, min(DRAW_BLOCK, n - s), dtype, xp, out[s:])
    return out


def _raw_block(bitgen, k, sigma, g, a, tmp):
    """g[:k] += the "raw" stream's next k draws of sigma z (``optim.raw_integers`` then ``optim.box_muller_raw``,
    the same operations), through the scratch arrays a (>= 2h entries) and tmp (>= h) of g's dtype."""
    h, dt = (k + 1) // 2, g.dtype.type
    if g.dtype == numpy.float32:
        words = bitgen.random_raw(h)
        v = words.view(numpy.uint32) if _LITTLE else numpy.stack([words & numpy.uint64(0xFFFFFFFF),
                                                                  words >> numpy.uint64(32)], axis=1).reshape(-1)
        v >>= numpy.uint32(9)  # (2h,) each half's top 23 bits
        b = 23
    else:
        v = bitgen.random_raw(2 * h)
        v >>= numpy.uint64(12)  # (2h,) each word's top 52 bits
        b = 52
    a = a[: 2 * h]
    numpy.copyto(a, v, casting="unsafe")  # exact: b < the dtype's mantissa
    s, theta = a[:h], a[h:]
    s += dt(0.5)
    s *= dt(2.0**-b)  # u = (a + 1/2) 2^-b, in (0, 1)
    numpy.log(s, out=s)
    s *= dt(-2.0 * sigma * sigma)
    numpy.sqrt(s, out=s)  # s = sigma sqrt(-2 ln u)
    theta *= dt(2.0 * math.pi * 2.0**-b)
    t = tmp[:h]
    numpy.sin(theta, out=t)
    t *= s
    g[:h] += t  # sigma z_i = s_i sin(theta_i)
    t = tmp[: k - h]
    numpy.cos(theta[: k - h], out=t)
    t *= s[: k - h]
    g[h:k] += t  # sigma z_{h+i} = cos(theta_i) s_i


def add_gradient_noise(grads, t, eta, rng, gamma=0.55, stream="raw"):
    """``optim.gradient_noise`` added to every gradient in place: g += sigma_t z, sigma_t^2 = eta / (1 + t)^gamma.

    The draws are those of `stream` for each g in order (``optim.raw_noise``, or for "uniform"
    ``optim.standard_normal`` times sigma), made block by block into small buffers so that they never leave
    the CPU cache. On a GPU (CuPy arrays) the stream is always "uniform" on the device's generator, in one
    fused kernel per array (``nn.kernels``), or one block per array where CuPy has no kernels.
    grads: dict of arrays; t: 0-based step; rng: Generator (the only randomness).
    Returns sigma_t (the standard deviation, the square root of ``optim.noise_variance``).
    """
    sigma = math.sqrt(eta / (1.0 + t) ** gamma)  # optim.noise_variance
    if sigma == 0.0:
        return 0.0
    scratch = {}  # the raw stream's buffers, one pair per dtype for all the arrays of the step
    for g in grads.values():
        xp = array_module(g)
        gf = g.reshape(-1)
        if stream == "raw" and xp is numpy:
            if g.dtype not in scratch:
                h = (DRAW_BLOCK + 1) // 2
                scratch[g.dtype] = numpy.empty(2 * h, dtype=g.dtype), numpy.empty(h, dtype=g.dtype)
            a, tmp = scratch[g.dtype]
            for s in range(0, gf.size, DRAW_BLOCK):
                _raw_block(rng.bit_generator, min(DRAW_BLOCK, gf.size - s), sigma, gf[s:], a, tmp)
            continue
        fused = noise_kernel(xp)
        if fused is not None:  # a GPU: the same draws and operations as below, in two launches (nn.kernels)
            h = (gf.size + 1) // 2
            fused(rng.random(2 * h, dtype=g.dtype), numpy.int64(h), g.dtype.type(sigma), gf)
            continue
        B = 2 * _block(xp, gf.size)
        buf = xp.empty(min(B, gf.size), dtype=g.dtype)
        for s in range(0, gf.size, B):
            k = min(B, gf.size - s)
            _box_muller(rng, k, g.dtype, xp, buf)
            buf[:k] *= g.dtype.type(sigma)
            gf[s:s + k] += buf[:k]
    return sigma
