"""Adam (Kingma & Ba 2015, with bias correction) and annealed gradient noise (Neelakantan et al. 2015),
in their textbook forms.

Each is written as its paper writes it, on whole arrays. Training runs the fast forms of
:mod:`numpy_dlra.nn.fast` (blocked for the CPU's cache, fused kernels on a GPU), which compute the same
operations in the same order; tests/test_optim.py holds each to its form here, bitwise. The optimizer
state is a plain dict (``t``, ``m``, ``v``) so that a checkpoint can store and restore it exactly.
"""
import math
from dataclasses import dataclass

import numpy

from .backend import array_module
from .fast import DRAW_BLOCK, adam_step_


def adam_update(p, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of one array at step t (1-based); returns the new (p, m, v).

        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    written as the fast form computes it (the same operations, so the same rounding):
    m + (1 - b1)(g - m), v + (1 - b2)(g^2 - v), and p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    p, g, m, v: arrays of one shape and dtype.
    """
    dt = p.dtype.type
    m = m + (g - m) * dt(1.0 - beta1)
    v = v + (g * g - v) * dt(1.0 - beta2)
    denom = numpy.sqrt(v) * dt(1.0 / math.sqrt(1.0 - beta2**t)) + dt(eps)
    return p - (m / denom) * dt(lr / (1.0 - beta1**t)), m, v


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction; the paper uses lr 1e-3, betas (0.9, 0.999).

    With g the gradient at step t (1-based):
        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def init(self, params):
        """Fresh state: t = 0 and zero moments shaped like each parameter."""
        return {
            "t": 0,
            "m": {k: array_module(p).zeros_like(p) for k, p in params.items()},
            "v": {k: array_module(p).zeros_like(p) for k, p in params.items()},
        }

    def step(self, params, grads, state):
        """One update of every array in `params`, in place (:func:`adam_update` on each, by the fast form
        :func:`numpy_dlra.nn.fast.adam_step_`). `grads` is left unchanged."""
        adam_step_(params, grads, state, self.lr, self.beta1, self.beta2, self.eps)


def noise_variance(t, eta, gamma=0.55):
    """Neelakantan et al. (2015): sigma_t^2 = eta / (1 + t)^gamma, t the 0-based step. A VARIANCE."""
    return eta / (1.0 + t) ** gamma


def box_muller(u, n):
    """Box-Muller: n draws of N(0, 1) from the 2h uniforms u (h = ceil(n / 2) pairs, dtype of u):

        z_i = rho_i sin(2 pi u_{h+i}) (i < h),   z_{h+i} = rho_i cos(2 pi u_{h+i}) (i < n - h),
        rho_i = sqrt(-2 ln(1 - u_i)).

    Exact in distribution up to the uniforms' resolution (in float32 |z| <= 5.77, cutting off a tail
    mass of 8e-9). Returns a 1-d array of n draws.
    """
    xp, dt = array_module(u), u.dtype.type
    h = (n + 1) // 2
    rho = xp.sqrt(xp.log(dt(1) - u[:h]) * dt(-2))
    theta = u[h:] * dt(2.0 * math.pi)
    return xp.concatenate([rho * xp.sin(theta), xp.cos(theta[: n - h]) * rho[: n - h]])


def standard_normal(rng, n, dtype, xp=None):
    """n draws of N(0, 1): Box-Muller on uniforms from `rng`, in blocks of DRAW_BLOCK draws (each block
    draws its own 2 ceil(k / 2) uniforms). Returns a 1-d array of `dtype` on array module `xp` (numpy)."""
    xp, dtype = xp or numpy, numpy.dtype(dtype)
    blocks = []
    for s in range(0, n, DRAW_BLOCK):
        k = min(DRAW_BLOCK, n - s)
        blocks.append(box_muller(xp.asarray(rng.random(2 * ((k + 1) // 2), dtype=dtype)), k))
    return xp.concatenate(blocks) if blocks else xp.empty(0, dtype=dtype)


def raw_integers(words, dtype):
    """The b-bit integers of the "raw" stream, as floats of `dtype` (exact), from 64-bit words (uint64):

        float32, b = 23: each word's low 32-bit half, then its high half, each shifted right by 9 (its top 23 bits);
        float64, b = 52: each word shifted right by 12 (its top 52 bits).

    Returns (a, b): a has 2 len(words) entries in float32, len(words) in float64.
    """
    xp, dtype = array_module(words), numpy.dtype(dtype)
    if dtype == numpy.float32:
        halves = xp.stack([words & numpy.uint64(0xFFFFFFFF), words >> numpy.uint64(32)], axis=1).reshape(-1)
        return (halves >> numpy.uint64(9)).astype(dtype), 23
    return (words >> numpy.uint64(12)).astype(dtype), 52


def box_muller_raw(a, n, sigma, b):
    """Box-Muller with sigma folded into the radius: n draws of sigma z, z ~ N(0, 1), from 2h b-bit integers a
    (h = ceil(n / 2) pairs, dtype of a):

        s_i = sqrt(ln((a_i + 1/2) 2^-b) (-2 sigma^2)),   theta_i = a_{h+i} (2 pi 2^-b)          (i < h),
        out_i = s_i sin(theta_i) (i < h),   out_{h+i} = cos(theta_i) s_i (i < n - h).

    u_i = (a_i + 1/2) 2^-b is uniform on the 2^b midpoints of (0, 1), so the log is finite and
    |z| <= sqrt(2 (b + 1) ln 2): 5.77 in float32 (b = 23, the "uniform" stream's bound), 8.57 in float64.
    Returns a 1-d array of n entries.
    """
    xp, dt = array_module(a), a.dtype.type
    h = (n + 1) // 2
    s = xp.sqrt(xp.log((a[:h] + dt(0.5)) * dt(2.0**-b)) * dt(-2.0 * sigma * sigma))  # (h,) sigma sqrt(-2 ln u)
    theta = a[h:] * dt(2.0 * math.pi * 2.0**-b)  # (h,) angles in [0, 2 pi)
    return xp.concatenate([s * xp.sin(theta), xp.cos(theta[: n - h]) * s[: n - h]])


def raw_noise(rng, n, sigma, dtype):
    """n draws of sigma z, z ~ N(0, 1), by the "raw" stream: in blocks of DRAW_BLOCK draws, a block of k draws
    (h = ceil(k / 2) pairs) from the next h (float32) or 2h (float64) 64-bit words of `rng`'s bit generator
    (``random_raw``): :func:`raw_integers`, then :func:`box_muller_raw`. Returns a 1-d NumPy array of `dtype`."""
    blocks = []
    for s in range(0, n, DRAW_BLOCK):
        k = min(DRAW_BLOCK, n - s)
        h = (k + 1) // 2
        a, b = raw_integers(rng.bit_generator.random_raw(h if numpy.dtype(dtype) == numpy.float32 else 2 * h), dtype)
        blocks.append(box_muller_raw(a, k, sigma, b))
    return numpy.concatenate(blocks) if blocks else numpy.empty(0, dtype=dtype)


def gradient_noise(grads, t, eta, rng, gamma=0.55, stream="raw"):
    """Neelakantan et al.: g + sigma_t z for every gradient g, z ~ N(0, I) drawn for each g in order,
    sigma_t^2 = :func:`noise_variance`. Returns (the noisy gradients, sigma_t).

    `stream`, how `rng` becomes the draws (both Box-Muller, both N(0, 1) to float precision; tests/test_optim.py
    tests their moments and tails):
    - "raw" (the default): sigma folded into :func:`raw_noise`, Box-Muller on the bit generator's 64-bit words;
    - "uniform": sigma times :func:`standard_normal`, from ``Generator.random``'s floats: the stream of the runs
      made before "raw" (benchmarks/noise_draws.py measures both), and always on a GPU (CuPy arrays), whose
      generator is cuRAND's.
    """
    sigma = math.sqrt(noise_variance(t, eta, gamma))
    if sigma == 0.0:
        return dict(grads), 0.0
    out = {}
    for k, g in grads.items():
        xp = array_module(g)
        if stream == "raw" and xp is numpy:  # a GPU's generator is cuRAND's: "uniform" there
            out[k] = g + raw_noise(rng, g.size, sigma, g.dtype).reshape(g.shape)
        else:
            z = standard_normal(rng, g.size, g.dtype, xp)
            out[k] = g + (z * g.dtype.type(sigma)).reshape(g.shape)
    return out, sigma
