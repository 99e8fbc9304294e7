"""A convolution held as P FN(W') Q: the paper's "other architectures" paragraph (end of Sec. 4), built.

The paper: "for a kernel H x W x C_i x C_o, a column has the shape 1 x 1 x 1 x C_o and a row has the shape
H x W x C_i x 1". So W is the kernel as a C_o x (H W C_i) matrix, the im2col view: a row is one output filter,
a column one input coordinate (h, w, c_i) across the C_o filters. FN acts on the whole kernel, and Eq. (13) and
the fusions are the MLP's, applied to W'. :class:`ConvLayer` is :class:`.layer.FactorizedLayer` with two changes:

- its input is an image (B, H, W, G) of the previous layer's reduced features, read through patches (im2col),
  and its output the image (B, H - kh + 1, W - kw + 1, G_l), max-pooled 2 x 2 when ``pool``. ReLU and max pooling
  commute with a positive scale (max(|p| a) = |p| max(a)), so the feature groups of Sec. 4.3 work by channel:
  fused output channels stay exact through the pool (tests/test_conv_layer.py);
- what a column is, the flag ``conv_columns``:
    "coord"    the paper's words: one (h, w, c_i) coordinate. W' is (m', n'), Q (n' x kh kw C_i) acts on the
               patches; a fused pair of coordinates leaves a kernel that is no longer a convolution's
               (the export multiplies Q out: the kernel keeps all kh kw C_i inputs);
    "channel"  a whole input channel c_i: all kh kw positions of it, a vector of C_o kh kw entries. W' is stored
               (m', kh kw n') in (h, w, c) order, Q (n' x C_i) acts on the channels before the patches, and the
               layer stays a convolution with n' input channels.
  and which axes may fuse, ``conv_axes``: "both" (the default, measured in docs/choices.md), rows and columns
  whenever the MLP's other rules allow; "longer", the MLP's rule (equations.fusable_axes) on (m', the number of
  columns).

A dense layer that reads a flattened image (the CNN's dense 256 after the pool) is a ConvLayer whose kernel
covers the whole image (kh, kw = H, W): its W' is the dense layer's W' in the same (h, w, c) order, and under
"channel" its columns are the flattened image's channels.
"""
import numpy as np

from ..nn.backend import array_module, to_numpy
from ..nn.conv import MaxPool2D, _col2im, _im2col
from .features import FeatureGroups, GroupReLU, connector
from .layer import FactorizedLayer, _delete, _pq_weights
from .ops import Connect, FNLinear

COLUMNS = ("channel", "coord")  # what a column of a kernel is (conv_columns)
AXES = ("longer", "both")  # which axes of a kernel may fuse (conv_axes)


class _Positions:
    """The previous layer's feature groups repeated over the kh kw positions of a patch (the "coord" reading):
    input coordinate (i, j, c) of this layer is feature (i, j, of_unit[c]) of the patches of the reduced image."""

    def __init__(self, groups, positions):
        G = groups.size
        self.of_unit = (np.arange(positions)[:, None] * G + groups.of_unit[None, :]).reshape(-1)  # (kh kw m,)
        self.size = positions * G


class ConvLayer(FactorizedLayer):
    """Layer l of L, a kh x kw "valid" convolution (stride 1) on (H, W) images held as P FN(W') Q; see the module doc.

    factors : LayerFactors, P (C_o x m') and Q (n' x kh kw C_i for "coord", n' x C_i for "channel")
    kernel  : (kh, kw);  image : (H, W) of its input;  pool : 2 x 2 max pooling after the ReLU
    """

    def __init__(self, l, n_layers, factors, k=None, classes=1, *, kernel, image, pool=False, columns="channel",
                 axes="both"):
        if columns not in COLUMNS or axes not in AXES:
            raise ValueError(f"conv_columns {columns!r}, conv_axes {axes!r}: choose from {COLUMNS}, {AXES}")
        super().__init__(l, n_layers, factors, k, classes)
        self.kernel, self.image, self.pool, self.columns, self.axes = tuple(kernel), tuple(image), pool, columns, axes
        self.positions = self.kernel[0] * self.kernel[1]

    # --- the vectors of an axis ----------------------------------------------------------------------------------
    def n_weights(self):
        m, n = self.shape()
        return m * n * (self.positions if self.columns == "channel" else 1)

    def view(self, a, axis):
        """Columns: "coord", a itself (m', n'); "channel", a (m', kh kw n') as (m' kh kw, n'): column c holds every
        weight that reads input channel c (a view, since W' is stored in (h, w, c) order). Rows: a^T."""
        if axis == "rows":
            return a.T
        return a if self.columns == "coord" else a.reshape(-1, a.shape[1] // self.positions)

    def drop(self, a, d, axis):
        if axis == "rows" or self.columns == "coord":
            return super().drop(a, d, axis)
        m, n = a.shape[0], a.shape[1] // self.positions
        return _delete(a.reshape(m, self.positions, n), d, 2).reshape(m, -1)  # channel d at every position

    def fusable_axes(self):
        """"longer": equations.fusable_axes on (m', columns); "both": every axis the MLP's other rules allow."""
        if self.axes == "longer":
            return super().fusable_axes()
        m, n = self.shape()
        return [a for a, ok in (("cols", not self.first and n > 1), ("rows", not self.last and m > 1)) if ok]

    # --- forward and backward ------------------------------------------------------------------------------------
    def out_image(self):
        """(H', W') of this layer's output, after the pooling."""
        (H, W), (kh, kw) = self.image, self.kernel
        Ho, Wo = H - kh + 1, W - kw + 1
        return (Ho // 2, Wo // 2) if self.pool else (Ho, Wo)

    def build(self, prev, m_full, r0, xp, dtype):
        """The ops from P and Q: the connector (the previous layer's |P| folded into Q, by channel or by
        patch coordinate), FN linear on the patches, the grouped ReLU by channel (Sec. 4.3), the pooling."""
        f, (mp, np_) = self.factors, self.shape()
        self.groups = FeatureGroups.of(f)
        self.conn = Connect(self._connector(prev), np_, xp, dtype)
        self.lin, self.act = FNLinear(self.k), GroupReLU(self.groups, mp, xp, dtype)
        self.pq_weights = _pq_weights(f, mp, np_, xp, dtype)
        if self.pq_weights is not None and self.columns == "channel":  # b_j per channel, the same at each position
            self.pq_weights = (self.pq_weights[0], array_module(self.pq_weights[1]).tile(self.pq_weights[1], self.positions))

    def _connector(self, prev):
        """The sparse connector's triplets (:func:`.features.connector`): Q with the previous layer's |P| folded in,
        on the input channels ("channel") or on the patch coordinates (i, j, c) ("coord"); None for the identity."""
        if prev is None:
            return connector(self.shape()[1], self.factors)
        groups, scale = prev.groups, np.abs(prev.factors.p_scale)
        if self.columns == "coord":
            groups, scale = _Positions(groups, self.positions), np.tile(scale, self.positions)
        return connector(self.shape()[1], self.factors, groups, scale)

    def _patches(self, a):
        """a (B, H, W, C) -> patches (B Ho Wo, kh kw C) in (i, j, c) order; a view when the kernel covers the image."""
        (kh, kw), B = self.kernel, a.shape[0]
        if a.shape[1:3] == (kh, kw):
            return a.reshape(B, -1)
        return _im2col(a, kh, kw).reshape(-1, kh * kw * a.shape[3])

    def _unpatch(self, d, shape):
        """The adjoint of :meth:`_patches`: d (B Ho Wo, kh kw C) summed back into an image of `shape`."""
        (kh, kw), (B, H, W, C) = self.kernel, shape
        if (H, W) == (kh, kw):
            return d.reshape(shape)
        Ho, Wo = H - kh + 1, W - kw + 1
        return _col2im(d.reshape(B, Ho, Wo, kh, kw, C), H, W)

    def forward(self, params, a, *, training=False, rng=None):
        """a (B, H, W, G_{l-1}) -> the features (B, H', W', G_l); and the cache."""
        B, H, W, G = a.shape
        (kh, kw) = self.kernel
        Ho, Wo = H - kh + 1, W - kw + 1
        if self.columns == "channel":
            z, _ = self.conn.forward({}, a.reshape(B * H * W, G))  # (B H W, n'): Q on the channels
            z_img = z.reshape(B, H, W, -1)
            z = self._patches(z_img)  # (B Ho Wo, kh kw n')
        else:
            z, _ = self.conn.forward({}, self._patches(a))  # (B Ho Wo, kh kw G) -> (B Ho Wo, n')
            z_img = None
        u, c_lin = self.lin.forward(self.params_of(params), z)  # (B Ho Wo, m')
        f, c_act = self.act.forward({}, u)  # (B Ho Wo, G_l)
        f = f.reshape(B, Ho, Wo, -1)
        c_pool = None
        if self.pool:
            f, c_pool = MaxPool2D().forward({}, f)  # (B, Ho // 2, Wo // 2, G_l)
        return f, (a.shape, None if z_img is None else z_img.shape, c_lin, c_act, c_pool)

    def backward(self, d, cache, *, input_grad=True):
        """(dL/da_{l-1} (B, H, W, G_{l-1}) or None, the gradients of W', b' (and g) keyed as in params)."""
        a_shape, z_shape, c_lin, c_act, c_pool = cache
        if self.pool:
            d, _ = MaxPool2D().backward(d, c_pool)
        d, _ = self.act.backward(d.reshape(-1, d.shape[3]), c_act)  # (B Ho Wo, m')
        d, g = self.lin.backward(d, c_lin, input_grad=input_grad)  # (B Ho Wo, n' or kh kw n')
        grads = {self.keys[k]: v for k, v in g.items()}
        if not input_grad:
            return None, grads
        B, H, W, G = a_shape
        if self.columns == "channel":
            d = self._unpatch(d, z_shape)  # (B, H, W, n')
            d, _ = self.conn.backward(d.reshape(B * H * W, -1), None)  # (B H W, G)
            return d.reshape(a_shape), grads
        d, _ = self.conn.backward(d, None)  # (B Ho Wo, kh kw G)
        return self._unpatch(d, a_shape), grads

    # --- dense forms ---------------------------------------------------------------------------------------------
    def _dense_Q(self):
        """Q over the patch coordinates, (n' kh kw or n', kh kw C_i): for "channel", I_{kh kw} (x) Q in (h, w, c) order."""
        f, (_, np_) = self.factors, self.shape()
        Q = f.dense_Q(np_)
        return Q if self.columns == "coord" else np.kron(np.eye(self.positions), Q)

    def to_dense(self, params):
        """(W (C_o, kh kw C_i), b (C_o,)) = (P FN(W') Q, P b'), float64; the kernel K[i, j, c, o] = W[o, (i, j, c)]."""
        P = self.factors.dense_P(self.shape()[0])
        return P @ self.weight(params) @ self._dense_Q(), P @ to_numpy(params[self.keys["b"]]).astype(np.float64)

    def export(self, params, prev, channel_map=False):
        """This layer of the plain CNN: (kernel (kh, kw, G_{l-1}, G_l), b (G_l,)), float64: rows r and signs s of
        the feature groups, c W' and the connector M multiplied out, W_l = diag(s) (c W' M)[r].

        With ``channel_map`` (channel columns only) the connector is kept apart: (kernel (kh, kw, n', G_l), b, M
        (n', G_{l-1}) or None), the layer's input mixed by the 1 x 1 map M first, the kernel reading its n' channels."""
        mp, np_ = self.shape()
        W = self.weight(params)  # (m', n') or (m', kh kw n')
        spec = self._connector(prev)
        M = None
        if spec is not None:
            rows, cols, vals, G = spec
            M = np.zeros((np_, G))
            np.add.at(M, (rows, cols), vals)  # duplicates summed, as the sparse connector does
            if channel_map and self.columns == "channel":
                pass  # kept apart: returned beside the kernel
            elif self.columns == "channel":
                W = (W.reshape(mp, self.positions, np_) @ M).reshape(mp, -1)  # (m', kh kw, n') @ (n', G) per position
            else:
                W = W @ M  # (m', n') @ (n', kh kw G)
        g, b = self.groups, to_numpy(params[self.keys["b"]]).astype(np.float64)
        W = g.signs[:, None] * W[g.rows]  # (G_l, kh kw G_{l-1}), or (G_l, kh kw n') with the map kept apart
        kh, kw = self.kernel
        K = W.reshape(len(g.rows), kh, kw, -1).transpose(1, 2, 3, 0)
        if channel_map and self.columns == "channel":
            return K, g.signs * b[g.rows], M
        return K, g.signs * b[g.rows]

    def stats(self, m_full):
        mp, np_ = self.shape()
        return {"m": mp, "n": np_, "feat": self.groups.size, "kernel": list(self.kernel), "columns": self.columns}
