"""The seed report's CNN with every layer held as P FN(W') Q: DLRA on convolutions (the paper's future work).

conv 3x3 (C -> f1) - ReLU - conv 3x3 (f1 -> f2) - ReLU - max pool 2x2 - dense (-> hidden) - ReLU - dense
(-> classes), as :class:`numpy_dlra.models.cnn.CNN`. Layers 1-3 are :class:`.conv_layer.ConvLayer` (the dense
layer after the pool is a convolution whose kernel covers the pooled image, in the same (h, w, c) order as
the CNN's flattened W3), layer 4 a :class:`.layer.FactorizedLayer`. Everything else -- the pair search, RaRe,
the merges, FN, the L2 readings, the checkpoint -- is :class:`.network.FactorizedMLP`'s, through the layers'
interface. The kernels are stored as matrices, W'_l (m', kh kw n') (channel columns) or (m', n') (coordinate
columns); at initialization W'_l = K_l reshaped, the same numbers as the dense CNN's.
"""
import numpy as np

from ..models.cnn import CNN
from ..nn.backend import to_numpy
from .conv_layer import ConvLayer
from .layer import FactorizedLayer, LayerFactors
from .network import FactorizedMLP


class FactorizedCNN(FactorizedMLP):
    """The factorized CNN: ``sizes`` = (H W C, f1, f2, hidden, classes), ``input_shape`` = (H, W, C).

    columns, axes : the readings of a kernel's columns and of the longer-axis rule (:mod:`.conv_layer`).
    """

    def __init__(self, input_shape, sizes, factors, fn_k, xp=np, dtype=np.float32, l2_on="w", columns="channel",
                 axes="both"):
        self.input_shape, self.columns, self.axes = tuple(input_shape), columns, axes
        H, W, _ = self.input_shape
        self._geometry = [dict(kernel=(3, 3), image=(H, W)), dict(kernel=(3, 3), image=(H - 2, W - 2), pool=True),
                          dict(kernel=((H - 4) // 2, (W - 4) // 2), image=((H - 4) // 2, (W - 4) // 2))]
        super().__init__(sizes, factors, fn_k, 0.0, xp, dtype, l2_on)

    def _make_layers(self, factors, fn_k):
        L, classes = len(factors), self.sizes[-1]
        k = lambda l: fn_k[l - 1] if fn_k else None  # noqa: E731
        convs = [ConvLayer(l, L, factors[l - 1], k(l), classes, columns=self.columns, axes=self.axes, **geo)
                 for l, geo in enumerate(self._geometry, start=1)]
        return convs + [FactorizedLayer(4, L, factors[3], k(4), classes)]

    @classmethod
    def from_cnn(cls, cnn, params, fn=True, xp=np, l2_on="w", columns="channel", axes="both"):
        """The factorized form of a dense :class:`CNN`'s parameters (P, Q identity, W' = the kernel as a matrix,
        g = 1); returns (model, params)."""
        f1, f2, hidden = cnn.widths
        H, W, C = cnn.input_shape
        sizes = (H * W * C, f1, f2, hidden, cnn.n_classes)
        dense = {"W1": _matrix(params["K1"]), "W2": _matrix(params["K2"]), "W3": params["W3"], "W4": params["W4"]}
        out, k = {}, []
        for l in range(1, 5):
            out[f"W{l}"], out[f"b{l}"] = xp.ascontiguousarray(dense[f"W{l}"]).copy(), params[f"b{l}"].copy()
            if fn:
                out[f"g{l}"] = xp.ones(1, dtype=out[f"W{l}"].dtype)
                k.append(float(np.sqrt((to_numpy(out[f"W{l}"]).astype(np.float64) ** 2).sum())))  # ||W'||_F at init
        ins = (C, f1, f2)  # the input channels of layers 1-3
        factors = [LayerFactors.identity(sizes[l], ins[l - 1] if columns == "channel" else out[f"W{l}"].shape[1])
                   for l in (1, 2, 3)] + [LayerFactors.identity(cnn.n_classes, hidden)]
        model = cls(cnn.input_shape, sizes, factors, k if fn else None, xp, out["W1"].dtype, l2_on, columns, axes)
        return model, out

    def forward(self, params, x, *, training=False, rng=None):
        """Logits (B, classes) for flat images x (B, H W C), and the cache."""
        a, caches = x.reshape((x.shape[0],) + self.input_shape), []
        for layer in self.layers:
            if not isinstance(layer, ConvLayer) and a.ndim == 4:
                a = a.reshape(a.shape[0], -1)  # (B, 1, 1, G) -> (B, G)
            a, cache = layer.forward(params, a, training=training, rng=rng)
            caches.append(cache)
        return a, caches

    def backward(self, dlogits, caches, *, input_grad=True):
        grads, d = {}, dlogits
        for layer, cache in zip(reversed(self.layers), reversed(caches)):
            if isinstance(layer, ConvLayer) and d.ndim == 2:
                d = d.reshape(d.shape[0], 1, 1, -1)  # the dense layer's input gradient, as an image
            d, g = layer.backward(d, cache, input_grad=not layer.first or input_grad)
            grads.update(g)
        return (None if d is None else d.reshape(d.shape[0], -1)), grads

    def export(self, params, channel_maps=False):
        """The plain CNN this network computes: :class:`CNN` parameters K1 (3, 3, C, G1), K2 (3, 3, G1, G2), W3
        (G3, pooled (h, w) G2) in the CNN's flatten order, W4 (classes, G3), and the biases; float64.

        ``channel_maps`` (channel columns): the connectors of layers 2 and 3 kept apart as 1 x 1 maps M2 (n'_2, G1),
        M3 (n'_3, G2), applied to the previous features before the kernel, which then reads n' channels: K2
        (3, 3, n'_2, G2), W3 (G3, pooled (h, w) n'_3). A column fusion then shrinks the exported network too
        (:func:`numpy_dlra.experiments.export.cnn_forward` runs either form)."""
        out, prev = {}, None
        for layer in self.layers:
            if channel_maps and isinstance(layer, ConvLayer) and layer.columns == "channel":
                w, b, M = layer.export(params, prev, channel_map=True)
                if M is not None:
                    out[f"M{layer.l}"] = M
            else:
                w, b = layer.export(params, prev)
            if layer.l == 3:
                w = w.transpose(3, 0, 1, 2).reshape(w.shape[3], -1)  # the kernel over the whole image: dense W3
            out[("K" if layer.l < 3 else "W") + str(layer.l)], out[f"b{layer.l}"] = w, b
            prev = layer
        return out

    def exported_model(self):
        """The :class:`CNN` of the reduced channel and unit counts that :meth:`export`'s parameters fit."""
        widths = tuple(d["feat"] for d in self.layer_stats()[:3])
        return CNN(self.input_shape, self.sizes[-1], widths=widths)

    def flops_per_sample(self):
        """2 m' (kh kw n' or n') per output position, summed over the layers (P, Q, groups, pooling not counted)."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, ConvLayer):
                (H, W), (kh, kw) = layer.image, layer.kernel
                total += 2 * (H - kh + 1) * (W - kw + 1) * layer.n_weights()
            else:
                total += 2 * layer.n_weights()
        return total

    def flops_paper(self):
        return self.flops_per_sample()

    def dropout_rates(self):
        return []


def _matrix(K):
    """A kernel (kh, kw, C_in, C_out) as the paper's C_out x (kh kw C_in) matrix, in (h, w, c) order."""
    return K.reshape(-1, K.shape[-1]).T
