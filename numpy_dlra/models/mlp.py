"""The paper's baseline network (Sec. 5): 784-500-500-500-500-500-10, ReLU, dropout, softmax.

Layer l (1-based, as the paper's W_1 ... W_N) has parameters ``W{l}`` (m_l, n_l) and ``b{l}``
(m_l,). Every hidden layer is followed by ReLU and inverted dropout (rate 0.2 in the paper,
"all layers except the output"); the last layer gives the logits.
"""
import math
from dataclasses import dataclass

import numpy as np

from ..nn.backend import to_numpy
from ..nn.layers import Dropout, Linear, ReLU
from ..nn.lowrank import LowRankLinear
from .base import Classifier

PAPER_SIZES = (784, 500, 500, 500, 500, 500, 10)


def init_params(sizes, rng, dtype, scheme="he", xp=None, ranks=None):
    """Initial weights for the MLP with layer widths `sizes`.

    The paper does not state its initialization. "he": W ~ N(0, 2 / n_in) (He et al. 2015, made for
    ReLU, keeps activations' scale through depth); "glorot": W ~ U(+-sqrt(6 / (n_in + n_out)));
    biases 0. Draws are made in float64 from `rng` in layer order, then cast, so float32 and
    float64 runs of one seed start from the same weights (up to rounding).
    `ranks` ({layer: r}) makes those layers fixed-rank (Sainath et al. 2013): C ~ N(0, 2 / n_in) and
    B ~ N(0, 1 / r), so that B C has the variance of a He-initialized W.

    Returns
    -------
    dict: ``W{l}`` (sizes[l], sizes[l-1]) -- or ``B{l}`` (sizes[l], r) and ``C{l}`` (r, sizes[l-1]) --
    and ``b{l}`` (sizes[l],) for l = 1 .. len(sizes) - 1
    """
    xp = xp or np
    params = {}
    for l in range(1, len(sizes)):
        n, m = sizes[l - 1], sizes[l]
        if ranks and l in ranks:
            r = ranks[l]
            params[f"C{l}"] = xp.asarray(rng.standard_normal((r, n)) * math.sqrt(2.0 / n), dtype=dtype)
            params[f"B{l}"] = xp.asarray(rng.standard_normal((m, r)) * math.sqrt(1.0 / r), dtype=dtype)
            params[f"b{l}"] = xp.zeros(m, dtype=dtype)
            continue
        if scheme == "he":
            W = rng.standard_normal((m, n)) * math.sqrt(2.0 / n)
        elif scheme == "glorot":
            a = math.sqrt(6.0 / (n + m))
            W = rng.uniform(-a, a, (m, n))
        else:
            raise ValueError(f"unknown init scheme {scheme!r}: choose he or glorot")
        params[f"W{l}"] = xp.asarray(W, dtype=dtype)
        params[f"b{l}"] = xp.zeros(m, dtype=dtype)
    return params


@dataclass(frozen=True)
class MLP(Classifier):
    """Forward/backward of the whole network, composed from the ops in :mod:`numpy_dlra.nn.layers`."""

    sizes: tuple = PAPER_SIZES
    dropout: float = 0.2
    ranks: tuple = ()  # ((layer, r), ...): fixed-rank layers B C (Sainath et al. 2013); see init_params
    l2_kinds = "WBC"  # Eq. (17) over W, or a fixed-rank layer's B and C

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    @staticmethod
    def layer(params, l):
        """Layer l's op and its parameters: Linear (W, b), or LowRankLinear (B, C, b) when params hold B{l}."""
        if f"B{l}" in params:
            return LowRankLinear(), {"B": params[f"B{l}"], "C": params[f"C{l}"], "b": params[f"b{l}"]}
        return Linear(), {"W": params[f"W{l}"], "b": params[f"b{l}"]}

    def forward(self, params, x, *, training=False, rng=None):
        """Logits for a batch. x: (B, sizes[0]); returns logits (B, sizes[-1]) and the cache."""
        relu, drop = ReLU(), Dropout(self.dropout)
        caches = []
        h = x
        for l in range(1, self.n_layers + 1):
            op, p = self.layer(params, l)
            h, c = op.forward(p, h)
            caches.append((op, c))
            if l < self.n_layers:
                h, c_relu = relu.forward({}, h)
                h, c_drop = drop.forward({}, h, training=training, rng=rng)
                caches.append((c_relu, c_drop))
        return h, caches

    def backward(self, dlogits, caches, *, input_grad=True):
        """Gradients of every parameter given dL/dlogits (B, C).

        Returns (dx, grads): dx (B, sizes[0]) is dL/dx, or None with ``input_grad=False``.
        """
        relu, drop = ReLU(), Dropout(self.dropout)
        grads = {}
        d = dlogits
        i = len(caches) - 1
        for l in range(self.n_layers, 0, -1):
            op, c = caches[i]
            d, g = op.backward(d, c, input_grad=l > 1 or input_grad)  # layer 1's dx only when asked for
            grads.update({f"{k}{l}": v for k, v in g.items()})
            i -= 1
            if l > 1:
                c_relu, c_drop = caches[i]
                d, _ = drop.backward(d, c_drop)
                d, _ = relu.backward(d, c_relu)
                i -= 1
        return d, grads

    def export(self, params):
        """The plain MLP (eval mode): W_l (m_l, n_l) and b_l (m_l,) in float64 NumPy; a fixed-rank layer's
        factors are multiplied out, W_l = B_l C_l (its parameter count grows back to m n)."""
        out = {}
        for l in range(1, self.n_layers + 1):
            op, p = self.layer(params, l)
            p = {k: to_numpy(v).astype(np.float64) for k, v in p.items()}
            out[f"W{l}"] = p["W"] if "W" in p else p["B"] @ p["C"]  # (m, r) @ (r, n) -> (m, n)
            out[f"b{l}"] = p["b"]
        return out

    def layer_stats(self):
        """Per layer: m (outputs), n (inputs), feat (= m: no feature reduction in the dense net)."""
        return [{"m": self.sizes[l], "n": self.sizes[l - 1], "feat": self.sizes[l]} for l in range(1, len(self.sizes))]

    def _weights(self, l):
        """Weights of layer l's matrices: m n, or m r + r n for a fixed-rank layer."""
        m, n, r = self.sizes[l], self.sizes[l - 1], dict(self.ranks).get(l)
        return m * n if r is None else m * r + r * n

    def param_count(self):
        """Trainable parameters: sum_l m_l n_l + m_l (1,399,510 for the paper's sizes); m r + r n + m for a
        fixed-rank layer."""
        return sum(self._weights(l) + self.sizes[l] for l in range(1, len(self.sizes)))

    def flops_per_sample(self):
        """Forward FLOPs per sample, counted as 2 per weight (one multiply and one add; bias adds and
        activations not counted). 2,794,000 for the paper's sizes: Table 1's 2.79 M."""
        return sum(2 * self._weights(l) for l in range(1, len(self.sizes)))
