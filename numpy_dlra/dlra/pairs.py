"""The closest pairs of every layer (Eqs. 5, 6), from one Gram matrix per layer and axis per step.

Columns G = W'^T W' (n' x n'), rows G = W' W'^T (m' x m'): computed once per step after the
optimizer update (NumPy computes a product of a matrix with its own transpose by BLAS syrk, half a
GEMM) and searched once for the pair with the largest |cos|. That pair serves both the Eq. (13)
test of the merges right after the update (:mod:`.merge`) and the RaRe value and gradient of the
next step's loss (:mod:`.rare`). A merge changes one layer; its Grams and pairs are then computed
afresh, so every pair is always that of the current W', and a resumed run, which recomputes them
from the checkpointed W', continues bit for bit.

Which axes (the rules that give the paper's Table 2 shapes; docs/method.md):
- an axis is fusable when it is the longer axis of the current W' (both when square), never the
  columns of the first layer (the input pixels), never the rows of the last (the classes), and
  never below one vector (the last layer's columns never below the class count);
- one closest pair per layer and axis, shared by RaRe and Eq. (13): rows are searched, tested and
  fused as the rows of W' (kind "rows"), the vectors RaRe(W'^T) of Eq. (16) acts on, so the pair
  RaRe pulls together is the pair Eq. (13) tests (``row_vectors = "w"``, the default). The earlier
  reading, ``row_vectors = "wb"``, tests and fuses rows as augmented rows [w'_i, b'_i] (kind
  "rows+b") while RaRe pulls the closest W' rows: two kinds of vector on one axis. It stalls the
  row merges (docs/choices.md) and is kept as a flag for the runs made with it;
- everything is searched on the trainable W' (and b'), not on FN(W'): angles are the same.

Approximation (flag, off by default): with ``search_every = K > 1`` the Grams are computed and
searched only every K-th step (and after a merge); in between, the pairs found last are kept and
only their cosines and norms are recomputed exactly from the current vectors, O(m) each.
"""
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..nn.backend import array_module
from .layer import ROW_KIND


@dataclass(frozen=True)
class FusionRules:
    """The settings of the RaRe term and the merges. Field names are those of
    :class:`numpy_dlra.experiments.config.TrainConfig` (and of its flags), so :meth:`from_config`
    takes them by keyword."""

    lambda1: float = 20.0  # weight of L_RaRe, Eq. (18) (paper: 20)
    tau_cos: float = 1e-4  # Eq. (13), paper
    tau_euc: float = 1e-1  # Eq. (13), paper
    fuse_ratio: str = "lstsq"  # r of Eq. (8): "sum" is the paper's sum(w_d)/sum(w_k); "lstsq" <w_d,w_k>/<w_k,w_k>
    rare_axes: str = "all"  # "all": Eq. (16) as printed; "fusable": only the axes that may be fused now
    adam_merge: str = "carry"  # "carry": m <- (r m_d + m_k)/s, v <- (r^2 v_d + v_k)/s^2; "reset": zeros
    search_every: int = 1  # 1: exact (search every Gram every step); K > 1: approximation, see module doc
    merge_pairs: str = "closest"  # which pairs Eq. (13) fuses: "closest", "one" or "any" (merge.merge_step)
    eq13_on: str = "effective"  # which weights Eq. (13) reads: "effective", FN's c W'; "w", W' as stored
    row_vectors: str = "w"  # the rows Eq. (13) tests and fuses: "w", W' rows (RaRe's pair); "wb", [w', b'] rows

    @classmethod
    def from_config(cls, cfg):
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


def closest_pair(G, out=None):
    """(i, j, c): the pair i < j of vectors with the largest |cos| given their Gram G (n, n), c their cosine.

    A zero vector (norm below sqrt(the dtype's smallest normal) x 1e4, where its Gram entries are rounding) has
    cosine 0 with everything, and so is never fused or pulled by RaRe. Needs n >= 2. `out`: an (n, n) scratch array.
    """
    xp = array_module(G)
    n = G.shape[0]
    d = xp.sqrt(xp.maximum(xp.diagonal(G), 0))
    zero = math.sqrt(float(np.finfo(G.dtype).tiny)) * 1e4  # 1.1e-15 in float32: |w|^2 near underflow, G is rounding
    inv = xp.where(d > zero, 1.0 / xp.where(d > zero, d, 1.0), 0.0).astype(G.dtype)
    C = xp.multiply(G, inv[None, :], out=out)  # (n, n) cosines, in two passes
    C *= inv[:, None]
    C.reshape(-1)[:: n + 1] = 0  # the diagonal is not a pair
    hi, lo = int(C.argmax()), int(C.argmin())
    flat = hi if float(C.reshape(-1)[hi]) >= -float(C.reshape(-1)[lo]) else lo
    i, j = divmod(flat, n)
    return min(i, j), max(i, j), min(1.0, max(-1.0, float(C[i, j])))  # |cos| > 1 is rounding (a vector near zero)


def _gram(layer, W, axis, cache):
    """V^T V for the vectors V of `axis` (the layer's view of W'): W'^T W' (n', n') for "cols" (a convolution's
    columns may be whole channels), W' W'^T (m', m') for "rows"; computed once per `cache` dict.
    NumPy computes a product of a matrix with its own transpose by BLAS syrk: half a GEMM."""
    if axis not in cache:
        V = layer.view(W, "cols")
        cache[axis] = V.T @ V if axis == "cols" else W @ W.T  # (n', n') or (m', m')
    return cache[axis]


class ClosestPairs:
    """The closest pair of every layer and kind of one FactorizedMLP: ``pairs[(l, kind)]`` is
    (i, j, cos, |v_i|, |v_j|) for kind "cols", "rows" or "rows+b" (rows with the bias)."""

    def __init__(self, model, rules=FusionRules()):
        self.model, self.rules = model, rules  # the model's shapes change with every merge
        self.pairs = {}
        self._scratch = {}

    # --- which axes -------------------------------------------------------------------------
    def fusable_axes(self, l):
        """The axes of layer l that may fuse now (the layer's rule: equations.fusable_axes)."""
        return self.model.layers[l - 1].fusable_axes()

    def rare_axes(self, l):
        return ("cols", "rows") if self.rules.rare_axes == "all" else tuple(self.fusable_axes(l))

    def test_kind(self, axis):
        """The kind of vector Eq. (13) tests and fuses on `axis`: "cols"; "rows" (the W' rows RaRe acts on)
        or, with ``row_vectors = "wb"``, "rows+b"."""
        return ROW_KIND[self.rules.row_vectors] if axis == "rows" else axis

    def kinds(self, l):
        """What layer l needs: the RaRe axes (with lambda1 > 0) and the fusable ones (as Eq. 13 tests them)."""
        m, n = self.model.shape(l)
        kinds = {"cols": n, "rows": m, "rows+b": m}
        need = set(self.rare_axes(l)) if self.rules.lambda1 else set()
        need |= {self.test_kind(a) for a in self.fusable_axes(l)}
        return [k for k in ("cols", "rows", "rows+b") if k in need and kinds[k] >= 2]

    # --- finding the closest pairs ----------------------------------------------------------
    def refresh(self, params, step=None, layers=None):
        """Find the closest pairs of the current W' (all layers, or `layers`), from fresh Grams; with
        search_every = K > 1, on steps that are not multiples of K only re-measure the pairs found last."""
        K = self.rules.search_every
        search = K == 1 or step is None or step % K == 0
        for l in layers or range(1, self.model.n_layers + 1):
            kinds = self.kinds(l)
            if not search and all((l, k) in self.pairs for k in kinds):
                for k in kinds:
                    self.pairs[(l, k)] = self.measure(params, l, k, *self.pairs[(l, k)][:2])
                continue
            for k in ("cols", "rows", "rows+b"):
                self.pairs.pop((l, k), None)
            layer = self.model.layers[l - 1]
            keys = layer.keys
            W, grams = params[keys["W"]], {}
            for k in kinds:
                if k == "rows+b":  # the Gram of the rows of [W', b']: W' W'^T + b' b'^T
                    b = params[keys["b"]]
                    G = array_module(W).multiply(b[:, None], b[None, :], out=self._buffer((len(b), len(b)), W.dtype))
                    G += _gram(layer, W, "rows", grams)
                else:
                    G = _gram(layer, W, k, grams)
                i, j, c = closest_pair(G, out=self._buffer(G.shape, G.dtype, 1))
                self.pairs[(l, k)] = (i, j, c, math.sqrt(max(float(G[i, i]), 0.0)), math.sqrt(max(float(G[j, j]), 0.0)))

    def _buffer(self, shape, dtype, slot=0):
        """A reused scratch array of `shape` (a fresh 1 MB array costs page faults every step): one buffer per
        slot and dtype, as large as the largest shape asked for, viewed in its first prod(shape) entries, so
        that the shapes a long run passes through as it merges do not each keep a buffer."""
        key, size = (np.dtype(dtype).char, slot), math.prod(shape)
        if key not in self._scratch or self._scratch[key].size < size:
            self._scratch[key] = self.model.xp.empty(size, dtype=dtype)
        return self._scratch[key][:size].reshape(shape)

    def state(self):
        """The pairs' indices, for a checkpoint: [[layer, kind, i, j], ...]."""
        return [[l, k, v[0], v[1]] for (l, k), v in sorted(self.pairs.items())]

    def restore(self, params, state):
        """Continue from :meth:`state` of a checkpoint: exact mode searches afresh (as the uninterrupted
        run did after its last update); with search_every > 1 the saved pairs are re-measured."""
        if self.rules.search_every == 1 or not state:
            return self.refresh(params)
        self.pairs = {(l, k): self.measure(params, l, k, i, j) for l, k, i, j in state}

    def measure(self, params, l, kind, i, j, scale=1.0):
        """(i, j, cos, |v_i|, |v_j|) measured on the current vectors (used between searches, and by the
        Eq. 13 test on the network's weights): the weight part scaled by `scale`, a row's bias not."""
        layer = self.model.layers[l - 1]
        V = layer.vectors(params, "rows" if kind == "rows+b" else kind)  # a view, no copy
        vi, vj = V[:, i], V[:, j]
        s2 = scale * scale
        gii, gjj, gij = s2 * float((vi * vi).sum()), s2 * float((vj * vj).sum()), s2 * float((vi * vj).sum())
        if kind == "rows+b":
            b = params[layer.keys["b"]]
            bi, bj = float(b[i]), float(b[j])
            gii, gjj, gij = gii + bi * bi, gjj + bj * bj, gij + bi * bj
        ni, nj = gii**0.5, gjj**0.5
        return i, j, (gij / (ni * nj) if ni > 0 and nj > 0 else 0.0), ni, nj
