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


def gradient_noise(grads, t, eta, rng, gamma=0.55):
    """Neelakantan et al.: g + sigma_t z for every gradient g, z ~ N(0, I) (:func:`standard_normal`, drawn for
    each g in order), sigma_t^2 = :func:`noise_variance`. Returns (the noisy gradients, sigma_t)."""
    sigma = math.sqrt(noise_variance(t, eta, gamma))
    if sigma == 0.0:
        return dict(grads), 0.0
    out = {}
    for k, g in grads.items():
        z = standard_normal(rng, g.size, g.dtype, array_module(g))
        out[k] = g + (z * g.dtype.type(sigma)).reshape(g.shape)
    return out, sigma
