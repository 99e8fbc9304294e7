"""The paper's MLP with every layer held as P FN(W') Q (Sec. 4.1-4.3): the network that DLRA shrinks.

Layer l (1-based) has trainable ``W{l}`` (m'_l, n'_l), ``b{l}`` (m'_l,) and, with Frobenius
Normalization, ``g{l}`` (1,); its P and Q are the host-side :class:`LayerFactors` in
``model.factors[l - 1]``, changed only by merges (:mod:`numpy_dlra.dlra.merge`), after which
:meth:`FactorizedMLP.rebuild` re-derives the feature groups, connectors and dropout rates.

Per hidden layer the forward pass is  connector -> FN linear -> grouped ReLU -> dropout, and the
last layer is  connector -> FN linear -> P (a gather). Before any merge every P, Q is the
identity, every op takes its identity fast path, and without FN the network computes exactly what
:class:`numpy_dlra.models.mlp.MLP` computes (bit for bit).
"""
import numpy as np

from ..models.base import Classifier
from ..nn.backend import to_numpy
from ..nn.layers import Dropout
from .equations import dropout_rate
from .features import FeatureGroups, GroupReLU, connector
from .layer import Connect, FNLinear, Gather, LayerFactors, fn_scale


class FactorizedMLP(Classifier):
    """Forward/backward of the factorized network; holds the fixed structure, never trainable arrays.

    sizes   : the dense widths (784, 500, ..., 10); layer l maps sizes[l-1] -> sizes[l]
    factors : list of LayerFactors, one per layer
    fn_k    : list of the FN constants k_l = ||W'_l||_F at initialization, or None for no FN
    dropout : r0, the initial dropout rate of every hidden layer (decayed by Eq. 14)
    """

    def __init__(self, sizes, factors, fn_k, dropout, xp=np, dtype=np.float32):
        self.sizes, self.factors, self.fn_k, self.dropout = tuple(sizes), factors, fn_k, float(dropout)
        self.xp, self.dtype = xp, np.dtype(dtype)
        self.rebuild()

    @classmethod
    def from_dense(cls, dense, sizes, dropout, fn=True, xp=np):
        """The factorized form of dense parameters (P, Q identity, W' = W, b' = b, g = 1); returns (model, params)."""
        L = len(sizes) - 1
        params, k = {}, []
        for l in range(1, L + 1):
            W = dense[f"W{l}"]
            params[f"W{l}"], params[f"b{l}"] = W.copy(), dense[f"b{l}"].copy()
            if fn:
                params[f"g{l}"] = xp.ones(1, dtype=W.dtype)
                k.append(float(xp.sqrt((W.astype(np.float64) ** 2).sum())))
        factors = [LayerFactors.identity(sizes[l], sizes[l - 1]) for l in range(1, L + 1)]
        dtype = dense["W1"].dtype
        return cls(sizes, factors, k if fn else None, dropout, xp, dtype), params

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    def shape(self, l):
        """(m'_l, n'_l): every row and column of W' is read by at least one output and input."""
        f = self.factors[l - 1]
        return int(f.p_idx.max()) + 1, int(f.q_idx.max()) + 1

    def rebuild(self):
        """Re-derive the ops from the factors (after construction and after every merge)."""
        xp, dt, L = self.xp, self.dtype, self.n_layers
        self.groups = [FeatureGroups.of(f) for f in self.factors[:-1]]
        self.ops = []
        for l in range(1, L + 1):
            mp, np_ = self.shape(l)
            f = self.factors[l - 1]
            prev = () if l == 1 else (self.groups[l - 2], np.abs(self.factors[l - 2].p_scale))
            conn = Connect(connector(np_, f, *prev), np_, xp, dt)
            lin = FNLinear(self.fn_k[l - 1] if self.fn_k else None)
            if l < L:
                act = GroupReLU(self.groups[l - 1], mp, xp, dt)
                drop = Dropout(dropout_rate(self.groups[l - 1].size, self.sizes[l], self.dropout))  # Eq. (14)
            else:
                act, drop = Gather(f, mp, xp, dt), None
            self.ops.append((conn, lin, act, drop))

    def _layer_params(self, params, l):
        p = {"W": params[f"W{l}"], "b": params[f"b{l}"]}
        if self.fn_k:
            p["g"] = params[f"g{l}"]
        return p

    def forward(self, params, x, *, training=False, rng=None):
        """Logits (B, sizes[-1]) for x (B, sizes[0]), and the cache for :meth:`backward`."""
        a, caches = x, []
        for l, (conn, lin, act, drop) in enumerate(self.ops, start=1):
            z, _ = conn.forward({}, a)  # (B, n'_l)
            u, c_lin = lin.forward(self._layer_params(params, l), z)  # (B, m'_l)
            a, c_act = act.forward({}, u)  # (B, G_l) features, or (B, m_L) logits
            c_drop = None
            if drop is not None:
                a, c_drop = drop.forward({}, a, training=training, rng=rng)
            caches.append((c_lin, c_act, c_drop))
        return a, caches

    def backward(self, dlogits, caches, *, input_grad=True):
        """Gradients of every trainable array given dL/dlogits (B, C).

        Returns (dx, grads): grads keyed like params; dx (B, sizes[0]) is dL/dx, or None with
        ``input_grad=False`` (training never needs it, and skips layer 1's input GEMM).
        """
        grads, d = {}, dlogits
        for l in range(self.n_layers, 0, -1):
            conn, lin, act, drop = self.ops[l - 1]
            c_lin, c_act, c_drop = caches[l - 1]
            if drop is not None:
                d, _ = drop.backward(d, c_drop)
            d, _ = act.backward(d, c_act)
            d, g = lin.backward(d, c_lin, input_grad=l > 1 or input_grad)  # layer 1's dz only when asked for
            for k, v in g.items():
                grads[f"{k}{l}"] = v
            if l > 1 or input_grad:
                d, _ = conn.backward(d, None)
        return d, grads

    def to_dense(self, params):
        """The equivalent dense parameters W_l = P FN(W'_l) Q (m_l, n_l), b_l = P b'_l, in float64 NumPy."""
        dense = {}
        for l in range(1, self.n_layers + 1):
            f, (mp, np_) = self.factors[l - 1], self.shape(l)
            W = to_numpy(params[f"W{l}"]).astype(np.float64)
            if self.fn_k:
                W = W * fn_scale(W, to_numpy(params[f"g{l}"]).astype(np.float64), self.fn_k[l - 1])
            P, Q = f.dense_P(mp), f.dense_Q(np_)
            dense[f"W{l}"] = P @ W @ Q  # (m, m') @ (m', n') @ (n', n) -> (m, n)
            dense[f"b{l}"] = P @ to_numpy(params[f"b{l}"]).astype(np.float64)
        return dense

    # --- size accounting (metrics.jsonl; docs/engine.md "Counting rules") -------------------------------
    def layer_stats(self):
        """Per layer: m' (outputs of W'), n' (inputs of W'), feat (reduced feature dim; m for the last layer)."""
        out = []
        for l in range(1, self.n_layers + 1):
            mp, np_ = self.shape(l)
            feat = self.groups[l - 1].size if l < self.n_layers else self.sizes[l]
            out.append({"m": mp, "n": np_, "feat": feat})
        return out

    def param_count(self):
        """Trainable parameters: sum_l m'_l n'_l + m'_l (W', b'), + 1 per layer for the FN gain g.
        P and Q are not trainable and not counted (paper Sec. 4.1)."""
        return sum(m * n + m + (1 if self.fn_k else 0) for m, n in map(self.shape, range(1, self.n_layers + 1)))

    def flops_per_sample(self):
        """Forward FLOPs per sample, counted as 2 m'_l n'_l per layer, the rule of MLP.flops_per_sample applied
        to W'. P, Q and the feature groups are gathers and scalings of O(m + n), not counted, like the
        bias adds and activations."""
        return sum(2 * m * n for m, n in map(self.shape, range(1, self.n_layers + 1)))

    def dropout_rates(self):
        return [drop.rate for _, _, _, drop in self.ops[:-1]]


def compression(params_now, params_init):
    """Compression % = 100 (1 - params / params at initialization) (paper Table 1's "Comp.")."""
    return 100.0 * (1.0 - params_now / params_init) if params_init else 0.0

