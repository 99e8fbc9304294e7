"""Central-difference gradient checks in float64.

`numerical_grad(f, x)` perturbs every entry of x by +-h and returns (f(x+h) - f(x-h)) / 2h.
`directional_check(f, grads, params, rng)` compares the analytic directional derivative
<grad, v> with (f(p + h v) - f(p - h v)) / 2h for one random direction v over all parameters at
once: cheap enough for a whole network (after autograd's `check_grads`).
"""
import numpy as np


def numerical_grad(f, x, h=1e-6):
    """Central-difference gradient of the scalar function f at x (float64 array, modified and restored)."""
    if x.dtype != np.float64:
        raise TypeError("gradient checks run in float64")
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def rel_error(a, b):
    """max |a - b| / max(1e-12, max |a| + max |b|): scale-free error between two gradient arrays."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(a)) + np.max(np.abs(b))))


def check_param_grads(f, params, grads, h=1e-6):
    """Element-wise check of every array in `params` (dict of float64 arrays) against `grads`.

    `f()` must read the current values of `params`. Returns {name: relative error}.
    """
    return {k: rel_error(numerical_grad(f, params[k], h), grads[k]) for k in params}


def directional_check(f, params, grads, rng, h=1e-5):
    """Compare <grads, v> with the central difference of f along a random unit direction v.

    Returns (analytic, numeric) directional derivatives. `f(params)` must be pure.
    """
    v = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    norm = np.sqrt(sum(float((d * d).sum()) for d in v.values()))
    v = {k: d / norm for k, d in v.items()}
    plus = {k: p + h * v[k] for k, p in params.items()}
    minus = {k: p - h * v[k] for k, p in params.items()}
    numeric = (f(plus) - f(minus)) / (2 * h)
    analytic = sum(float((grads[k] * v[k]).sum()) for k in params)
    return analytic, numeric
