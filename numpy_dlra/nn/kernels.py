"""Fused GPU kernels for the elementwise work of a step: Adam's update and the gradient noise.

On a GPU every NumPy-style operation is a kernel launch, and the step's elementwise work over its
1.4 M parameters is hundreds of them: Adam's update is 11 operations per array, the noise's
Box-Muller 10. These kernels do the same float32 (or float64) operations in the same order in one
launch per array (the noise in two: the uniforms, then the transform and the add). They are compiled
with ``--fmad=false``, so that CUDA's compiler does not contract a * b + c into one rounding: each
operation rounds as the unfused CuPy operation does, and the fused step is bitwise the unfused one
(``tests/test_gpu_backend.py``, on a real GPU).

On the CPU, and on a CuPy without ``ElementwiseKernel`` (the test suite's stand-in), the functions
below return None and :mod:`numpy_dlra.nn.fast` runs its blocked NumPy-style code instead.
``FUSED = False`` turns them off everywhere (the tests compare the two paths that way).
"""
import functools

import numpy

FUSED = True
_OPTIONS = ("--fmad=false",)

# Adam, as nn.fast.adam_step_ writes it: m += (1 - b1)(g - m); v += (1 - b2)(g^2 - v);
# p -= step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps). b1c = 1 - b1, b2c = 1 - b2.
_ADAM = """
T tb = (g - m) * b1c;
m = m + tb;
tb = (g * g - v) * b2c;
v = v + tb;
tb = sqrt(v) * inv_bc2 + eps;
tb = (m / tb) * step_size;
p = p - tb;
"""

# Box-Muller on 2h uniforms u (h = ceil(k / 2) pairs), as nn.optim.box_muller pairs them:
# z_i = sqrt(-2 ln(1 - u_i)) sin(2 pi u_{h+i}) for i < h, and
# z_i = sqrt(-2 ln(1 - u_{i-h})) cos(2 pi u_i) for h <= i < k; then g_i += sigma z_i.
_NOISE = """
const T two_pi = (T)6.283185307179586;
T z;
if (i < h) {
    T rho = sqrt(log((T)1 - u[i]) * (T)-2);
    z = rho * sin(u[h + i] * two_pi);
} else {
    T rho = sqrt(log((T)1 - u[i - h]) * (T)-2);
    z = cos(u[i] * two_pi) * rho;
}
g = g + z * sigma;
"""


def _available(xp):
    return FUSED and xp is not numpy and hasattr(xp, "ElementwiseKernel")


@functools.lru_cache(maxsize=None)
def _kernels(xp):
    adam = xp.ElementwiseKernel("T g, T b1c, T b2c, T inv_bc2, T eps, T step_size", "T p, T m, T v", _ADAM,
                                "numpy_dlra_adam", options=_OPTIONS)
    noise = xp.ElementwiseKernel("raw T u, int64 h, T sigma", "T g", _NOISE, "numpy_dlra_noise", options=_OPTIONS)
    return adam, noise


def adam_kernel(xp):
    """The fused Adam update ``k(g, b1c, b2c, inv_bc2, eps, step_size, p, m, v)`` (p, m, v in place;
    every scalar of the arrays' dtype), or None where there is none (the CPU)."""
    return _kernels(xp)[0] if _available(xp) else None


def noise_kernel(xp):
    """The fused noise ``k(u, h, sigma, g)``: g += sigma z, z the Box-Muller draws of the 2h uniforms u
    (g: 1-d, k <= 2h entries, in place), or None where there is none (the CPU)."""
    return _kernels(xp)[1] if _available(xp) else None
