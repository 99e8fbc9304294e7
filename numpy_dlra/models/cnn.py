"""The fixed-rank baseline's small CNN: conv 32 3x3 - conv 32 3x3 - max pool 2x2 - dense 256 - softmax.

``widths`` = (f1, f2, hidden) = (32, 32, 256) by default; other widths are the narrower CNNs that
``numpy-dlra export`` writes for a DLRA run (the channel counts left) and that the controls train.

ReLU after both convolutions and the dense layer; no dropout (the report uses none). The last layer
is dense, or fixed-rank B (C x) + b with ``rank=r`` (Sainath et al. 2013). Inputs arrive flat, (B, H W C) in
row-major HWC order, and are viewed as images (B, H, W, C).

Parameters: ``K1`` (3, 3, C_in, f1), ``b1``; ``K2`` (3, 3, f1, f2), ``b2``; ``W3`` (hidden, F), ``b3``
with F = f2 ((H - 4) // 2) ((W - 4) // 2); and ``W4`` (classes, hidden), ``b4`` -- or ``B4`` (classes, r),
``C4`` (r, hidden), ``b4``.
"""
import math
from dataclasses import dataclass

import numpy as np

from ..nn.backend import to_numpy
from ..nn.conv import Conv2D, Flatten, MaxPool2D
from ..nn.layers import ReLU
from .base import Classifier
from .mlp import MLP


@dataclass(frozen=True)
class CNN(Classifier):
    input_shape: tuple = (28, 28, 1)  # (H, W, C)
    n_classes: int = 10
    widths: tuple = (32, 32, 256)  # (f1, f2, hidden): the two convolutions' channels, the dense layer's units
    rank: int = 0  # 0: dense last layer; r > 0: fixed rank r
    l2_kinds = "KWBC"  # Eq. (17) over every weight array: kernels, W, B, C
    predict_batch = 500

    @property
    def hidden(self):
        return self.widths[2]

    @property
    def flat(self):
        H, W, _ = self.input_shape
        return self.widths[1] * ((H - 4) // 2) * ((W - 4) // 2)

    def init_params(self, rng, dtype, xp=None):
        """He-normal weights (N(0, 2 / fan_in)), zero biases; the fixed-rank last layer as in mlp.init_params."""
        xp = xp or np
        C, (F1, F2, _) = self.input_shape[2], self.widths
        he = lambda shape, fan_in: xp.asarray(rng.standard_normal(shape) * math.sqrt(2.0 / fan_in), dtype=dtype)  # noqa: E731
        params = {"K1": he((3, 3, C, F1), 9 * C), "b1": xp.zeros(F1, dtype=dtype),
                  "K2": he((3, 3, F1, F2), 9 * F1), "b2": xp.zeros(F2, dtype=dtype),
                  "W3": he((self.hidden, self.flat), self.flat), "b3": xp.zeros(self.hidden, dtype=dtype)}
        if self.rank:
            params["C4"] = he((self.rank, self.hidden), self.hidden)
            params["B4"] = xp.asarray(rng.standard_normal((self.n_classes, self.rank)) * math.sqrt(1.0 / self.rank), dtype=dtype)
        else:
            params["W4"] = he((self.n_classes, self.hidden), self.hidden)
        params["b4"] = xp.zeros(self.n_classes, dtype=dtype)
        return params

    def forward(self, params, x, *, training=False, rng=None):
        """Logits (B, classes) for flat images x (B, H W C), and the cache."""
        relu = ReLU()
        h = x.reshape((x.shape[0],) + tuple(self.input_shape))
        caches = []
        for l in (1, 2):
            h, c = Conv2D().forward({"K": params[f"K{l}"], "b": params[f"b{l}"]}, h)  # (B, H - 2l, W - 2l, F)
            h, r = relu.forward({}, h)
            caches += [c, r]
        h, c = MaxPool2D().forward({}, h)  # (B, (H - 4) // 2, (W - 4) // 2, F)
        caches.append(c)
        h, c = Flatten().forward({}, h)  # (B, flat)
        caches.append(c)
        for l in (3, 4):
            op, p = MLP.layer(params, l)
            h, c = op.forward(p, h)  # (B, hidden), then (B, classes)
            caches.append((op, c))
            if l == 3:
                h, r = relu.forward({}, h)
                caches.append(r)
        return h, caches

    def backward(self, dlogits, caches, *, input_grad=True):
        """(dx, grads) given dL/dlogits (B, classes): dx (B, H W C) (None with input_grad=False), grads keyed like params."""
        relu, grads = ReLU(), {}
        c1, r1, c2, r2, cp, cf, (op3, c3), r3, (op4, c4) = caches
        d, g = op4.backward(dlogits, c4)
        grads.update({f"{k}4": v for k, v in g.items()})
        d, _ = relu.backward(d, r3)
        d, g = op3.backward(d, c3)
        grads.update({f"{k}3": v for k, v in g.items()})
        d, _ = Flatten().backward(d, cf)
        d, _ = MaxPool2D().backward(d, cp)
        for l, c, r in ((2, c2, r2), (1, c1, r1)):
            d, _ = relu.backward(d, r)
            d, g = Conv2D().backward(d, c, input_grad=l > 1 or input_grad)
            grads.update({f"{k}{l}": v for k, v in g.items()})
        dx = d.reshape(d.shape[0], -1) if d is not None else None
        return dx, {k: grads[k] for k in sorted(grads)}

    def export(self, params):
        """The plain CNN (itself), float64 NumPy: K1, b1, K2, b2, W3, b3, W4, b4; a fixed-rank last layer's factors
        multiplied out, W4 = B4 C4."""
        p = {k: to_numpy(v).astype(np.float64) for k, v in params.items()}
        out = {k: p[k] for k in ("K1", "b1", "K2", "b2", "W3", "b3", "b4")}
        out["W4"] = p["W4"] if "W4" in p else p["B4"] @ p["C4"]  # (classes, r) @ (r, hidden)
        return out

    def exported_model(self):
        """The :class:`CNN` that :meth:`export`'s parameters fit (dense last layer)."""
        return CNN(self.input_shape, self.n_classes, widths=self.widths)

    def _last(self):
        m, n, r = self.n_classes, self.hidden, self.rank
        return m * r + r * n if r else m * n

    def param_count(self):
        C, (F1, F2, _) = self.input_shape[2], self.widths
        return 9 * C * F1 + F1 + 9 * F1 * F2 + F2 + self.flat * self.hidden + self.hidden + self._last() + self.n_classes

    def flops_per_sample(self):
        """2 per multiply-add of the convolutions and dense layers (biases, ReLU, pooling not counted)."""
        H, W, C = self.input_shape
        F1, F2, _ = self.widths
        conv = (H - 2) * (W - 2) * 9 * C * F1 + (H - 4) * (W - 4) * 9 * F1 * F2
        return 2 * (conv + self.flat * self.hidden + self._last())

    def layer_stats(self):
        """The dense layers' shapes (the convolutions do not change): m, n, feat."""
        return [{"m": self.hidden, "n": self.flat, "feat": self.hidden},
                {"m": self.n_classes, "n": self.hidden, "feat": self.n_classes, "rank": self.rank or None}]
