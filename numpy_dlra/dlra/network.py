"""The paper's MLP with every layer held as P FN(W') Q (Sec. 4.1-4.3): the network that DLRA shrinks.

A :class:`FactorizedMLP` is a list of :class:`.layer.FactorizedLayer` (``model.layers``, layer l at index
l - 1). Each layer owns its P and Q, FN's constant and the names of its trainable arrays in ``params``
(``W3``, ``b3``, ``g3``); the network holds no trainable array and builds no key itself. Merges change one
layer (:meth:`.layer.FactorizedLayer.fuse`), after which :meth:`FactorizedMLP.rebuild` re-derives every
layer's feature groups, connectors and dropout rates.

Per hidden layer the forward pass is  connector -> FN linear -> grouped ReLU -> dropout, and the
last layer is  connector -> FN linear -> P (a gather). Before any merge every P, Q is the
identity, every op takes its identity fast path, and without FN the network computes exactly what
:class:`numpy_dlra.models.mlp.MLP` computes (bit for bit).
"""
import numpy as np

from ..models.base import Classifier
from ..nn.fast import scaled_add_
from .layer import FactorizedLayer, LayerFactors
from .ops import sq_norm

L2_READINGS = ("w", "effective", "dense")  # where Eq. (17) reads the weight: W', FN(W'), P FN(W') Q


class FactorizedMLP(Classifier):
    """Forward/backward of the factorized network, a list of layers; holds the structure, never trainable arrays.

    sizes   : the dense widths (784, 500, ..., 10); layer l maps sizes[l-1] -> sizes[l]
    factors : list of LayerFactors, one per layer (each becomes its layer's own)
    fn_k    : list of the FN constants k_l = ||W'_l||_F at initialization, or None for no FN
    dropout : r0, the initial dropout rate of every hidden layer (decayed by Eq. 14)
    l2_on   : which weight Eq. (17)'s L2 term reads, one of :data:`L2_READINGS` (see :meth:`add_l2`)
    """

    def __init__(self, sizes, factors, fn_k, dropout, xp=np, dtype=np.float32, l2_on="w"):
        if l2_on not in L2_READINGS:
            raise ValueError(f"l2_on {l2_on!r}: choose one of {', '.join(L2_READINGS)}")
        self.sizes, self.dropout = tuple(sizes), float(dropout)
        self.xp, self.dtype, self.l2_on = xp, np.dtype(dtype), l2_on
        self.layers = self._make_layers(factors, fn_k)
        self.rebuild()

    def _make_layers(self, factors, fn_k):
        """One :class:`.layer.FactorizedLayer` per P, Q pair (FactorizedCNN makes convolutions of the first ones)."""
        L = len(factors)
        return [FactorizedLayer(l, L, f, fn_k[l - 1] if fn_k else None, self.sizes[-1])
                for l, f in enumerate(factors, start=1)]

    @classmethod
    def from_dense(cls, dense, sizes, dropout, fn=True, xp=np, l2_on="w"):
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
        return cls(sizes, factors, k if fn else None, dropout, xp, dtype, l2_on), params

    @property
    def n_layers(self):
        return len(self.layers)

    @property
    def factors(self):
        """P and Q of every layer (a checkpoint saves them); each layer owns its own."""
        return [layer.factors for layer in self.layers]

    @property
    def fn_k(self):
        """FN's constants k_l, or None without FN."""
        return None if self.layers[0].k is None else [layer.k for layer in self.layers]

    def shape(self, l):
        """(m'_l, n'_l) of layer l (1-based)."""
        return self.layers[l - 1].shape()

    def rebuild(self):
        """Re-derive every layer's ops from its P and Q (after construction and after every merge)."""
        prev = None
        for layer in self.layers:
            layer.build(prev, self.sizes[layer.l], self.dropout, self.xp, self.dtype)
            prev = layer

    def forward(self, params, x, *, training=False, rng=None):
        """Logits (B, sizes[-1]) for x (B, sizes[0]), and the cache for :meth:`backward`."""
        a, caches = x, []
        for layer in self.layers:
            a, cache = layer.forward(params, a, training=training, rng=rng)
            caches.append(cache)
        return a, caches

    def backward(self, dlogits, caches, *, input_grad=True):
        """Gradients of every trainable array given dL/dlogits (B, C).

        Returns (dx, grads): grads keyed like params; dx (B, sizes[0]) is dL/dx, or None with
        ``input_grad=False`` (training never needs it, and skips layer 1's input GEMM).
        """
        grads, d = {}, dlogits
        for layer, cache in zip(reversed(self.layers), reversed(caches)):
            d, g = layer.backward(d, cache, input_grad=not layer.first or input_grad)
            grads.update(g)
        return d, grads

    def add_l2(self, params, grads, lambda2):
        """lambda2 L_L2 (Eq. 17) under the reading ``l2_on``; adds its gradient into `grads`; returns the value.

        With c_l = k_l g_l / ||W'_l||_F (FN; c = 1 without FN) and N layers:
        - "w":         (1/N) sum_l ||W'_l||_F^2, Eq. (17) as printed. Under FN the function ignores ||W'||, so
                       this only shrinks W' (and so enlarges Adam's effective step on the function);
        - "effective": (1/N) sum_l ||c_l W'_l||_F^2 = (1/N) sum_l (k_l g_l)^2, the weight the layer applies;
        - "dense":     (1/N) sum_l ||P_l c_l W'_l Q_l||_F^2 = (1/N) sum_l c_l^2 sum_kj a_k b_j W'_kj^2, the
                       dense weight of Sec. 4.1 (a_k = sum of p_i^2 over the outputs reading row k, b_j likewise
                       for Q's columns; a = b = 1, and so "dense" = "effective", before any merge).
        """
        if self.l2_on == "w" or (not self.fn_k and self.l2_on == "effective"):  # ||W'||^2: the generic term
            return super().add_l2(params, grads, lambda2)
        xp, L, total = self.xp, self.n_layers, 0.0
        for layer in self.layers:
            W, gW = params[layer.keys["W"]], grads[layer.keys["W"]]
            ab = layer.pq_weights if self.l2_on == "dense" else None
            f2 = sq_norm(W)
            if ab is None:
                S, weighted = f2, None
            else:
                weighted = W * ab[0][:, None]  # (m', n') a_k b_j W'_kj
                weighted *= ab[1][None, :]
                S = float(xp.dot(weighted.reshape(-1), W.reshape(-1)))
            if layer.k is not None:
                k, g = layer.k, float(params[layer.keys["g"]][0])
                c2 = k * k * g * g / f2
                total += c2 * S
                grads[layer.keys["g"]] += W.dtype.type(lambda2 * 2.0 * k * k * g * S / (f2 * L))
                if weighted is not None:  # d(c^2 S)/dW' = 2 c^2 (a b * W' - (S / f^2) W'); 0 when a = b = 1
                    weighted -= W * W.dtype.type(S / f2)
                    scaled_add_(gW, lambda2 * 2.0 * c2 / L, weighted)
            else:  # dense without FN: (1/N) sum a b W'^2
                total += S
                scaled_add_(gW, lambda2 * 2.0 / L, W if weighted is None else weighted)
        return lambda2 * total / L

    def to_dense(self, params):
        """The equivalent dense parameters W_l = P FN(W'_l) Q (m_l, n_l), b_l = P b'_l, in float64 NumPy."""
        dense = {}
        for layer in self.layers:
            dense[f"W{layer.l}"], dense[f"b{layer.l}"] = layer.to_dense(params)
        return dense

    def export(self, params):
        """The plain MLP this network computes (eval mode): W_l (G_l, G_{l-1}), b_l (G_l,) in float64 NumPy.

        Folds FN's scale (Eq. 15), P and Q (Sec. 4.1; Eqs. 7-12 made them) and the feature groups of
        Sec. 4.3 into dense layers whose widths are the reduced feature counts G_l (G_0 = the input width,
        G_L = the class count). Hidden feature g is relu(s_g u[r_g]) with u = c W' M a + b' (M: the connector,
        Q with the previous |P| folded in), so
            W_l = diag(s) (c W')[r, :] M_l,   b_l = s * b'[r]          (hidden layers; r, s = rows, signs)
            W_L = P (c W'_L) M_L,             b_L = P b'_L             (the logits)
        and logits = W_L relu(... relu(W_1 x + b_1) ...) + b_L, exactly the forward pass in eval mode.
        Returns {"W1": ..., "b1": ..., ...}; the widths are (sizes[0], G_1, ..., G_{L-1}, sizes[-1]).
        """
        out, prev = {}, None
        for layer in self.layers:
            out[f"W{layer.l}"], out[f"b{layer.l}"] = layer.export(params, prev)
            prev = layer
        return out

    # --- size accounting (metrics.jsonl; docs/engine.md "Counting rules") -------------------------------
    def layer_stats(self):
        """Per layer: m' (outputs of W'), n' (inputs of W'), feat (reduced feature dim; m for the last layer)."""
        return [layer.stats(self.sizes[layer.l]) for layer in self.layers]

    def param_count(self):
        """Trainable parameters: sum_l m'_l n'_l + m'_l (W', b'), + 1 per layer for the FN gain g.
        P and Q are not trainable and not counted (paper Sec. 4.1)."""
        return sum(layer.param_count() for layer in self.layers)

    def flops_per_sample(self):
        """Forward FLOPs per sample, counted as 2 m'_l n'_l per layer, the rule of MLP.flops_per_sample applied
        to W'. P, Q and the feature groups are gathers and scalings of O(m + n), not counted, like the
        bias adds and activations."""
        return sum(2 * m * n for m, n in (layer.shape() for layer in self.layers))

    def flops_paper(self):
        """Forward FLOPs per sample as the paper's Table 1 appears to count them for DLRA: a dense product
        between the reduced feature spaces, 2 sum_l feat_{l-1} feat_l (feat_0 = the input width, the last
        feat = the class count). It gives 2.093 M at Table 2's dimensions against the paper's 2.09 +- 0.03 M
        (docs/method.md Sec. 11); :meth:`flops_per_sample` counts 2 m'n' (1.94 M there)."""
        feats = [self.sizes[0]] + [d["feat"] for d in self.layer_stats()]
        return sum(2 * a * b for a, b in zip(feats, feats[1:]))

    def dropout_rates(self):
        return [layer.ops[3].rate for layer in self.layers[:-1]]


def compression(params_now, params_init):
    """Compression % = 100 (1 - params / params at initialization) (paper Table 1's "Comp.")."""
    return 100.0 * (1.0 - params_now / params_init) if params_init else 0.0

