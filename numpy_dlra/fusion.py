"""Dynamic Low-Rank Approximation's per-step work: the RaRe term (Eqs. 6, 7, 16) and the merges (Eqs. 8-13).

One Gram matrix per layer and axis serves everything: columns G = W'^T W' (n' x n'), rows
G = W' W'^T (m' x m'), computed once per step after the optimizer update (BLAS syrk). Each Gram
is searched once for its closest pair (max |cos|); that pair gives the Eq. (13) test of the merges
right after the update and the RaRe value and gradient of the next step's loss. A merge changes
one layer; its Grams and pairs are then computed afresh (merges are rare: merge tests and merges
together measured 2-3 % of a DLRA epoch, benchmarks/dlra_vs_baseline.py), so every pair is always that of the current W' and a resumed run, which
recomputes them from the checkpointed W', continues bit for bit.

Approximation (flag, off by default): with ``search_every = K > 1`` the Grams are computed and
searched only every K-th step (and after a merge); in between, the pairs found last are kept and
only their cosines and norms are recomputed exactly from the current vectors, O(m) each.

Rules (the paper on fusing, and on the input and classification layers; ../shared/notes/method.md Sec. 3):
- the closest pair on a fusable axis is fused while it meets Eq. (13); an axis is fusable when it
  is the longer axis of the current W' (both when square), never the columns of the first layer,
  never the rows of the last, and never below one vector (the last layer's columns never below
  the class count);
- rows are compared and fused as augmented rows [w'_i, b'_i] (the bias belongs to the rows); the
  RaRe term uses W'^T without the bias, as Eq. (16) is written;
- Eq. (13)'s D_euc rescales the dropped (longer) vector to the kept (shorter) one's length:
  D_euc = |w_k| sqrt(2 (1 - |cos|)) (from the Gram; its absolute error is ~|w_k| sqrt(2 eps), 5e-4 |w_k|
  in float32, far below tau_euc = 0.1);
- everything is measured on the trainable W' (and b'), not on FN(W'): angles are the same, and
  FN's scale c = k g / ||W'||_F only rescales the weight part against the bias.
"""
import math
from dataclasses import dataclass

import numpy as np

from .backend import array_module
from .equations import fusion_ratio


@dataclass(frozen=True)
class FusionRules:
    tau_cos: float = 1e-4  # paper
    tau_euc: float = 1e-1  # paper
    ratio: str = "lstsq"  # "sum": the paper's r = sum(w_d)/sum(w_k); "lstsq": <w_d,w_k>/<w_k,w_k> (our default)
    rare_axes: str = "all"  # "all": Eq. (16) as printed; "fusable": only the axes that may be fused now
    adam_merge: str = "carry"  # "carry": m <- (r m_d + m_k)/s, v <- (r^2 v_d + v_k)/s^2; "reset": zeros
    search_every: int = 1  # 1: exact (search every Gram every step); K > 1: approximation, see module doc


def closest_pair(G, out=None):
    """(i, j, c): the pair i < j of vectors with the largest |cos| given their Gram G (n, n), c their cosine.

    A zero vector has cosine 0 with everything. Needs n >= 2. `out`: an (n, n) scratch array.
    """
    xp = array_module(G)
    n = G.shape[0]
    d = xp.sqrt(xp.maximum(xp.diagonal(G), 0))
    inv = xp.where(d > 0, 1.0 / xp.where(d > 0, d, 1.0), 0.0).astype(G.dtype)
    C = xp.multiply(G, inv[None, :], out=out)  # (n, n) cosines, in two passes
    C *= inv[:, None]
    C.reshape(-1)[:: n + 1] = 0  # the diagonal is not a pair
    hi, lo = int(C.argmax()), int(C.argmin())
    flat = hi if float(C.reshape(-1)[hi]) >= -float(C.reshape(-1)[lo]) else lo
    i, j = divmod(flat, n)
    return min(i, j), max(i, j), float(C[i, j])


def _delete(a, d, axis):
    xp = array_module(a)
    keep = xp.ones(a.shape[axis], dtype=bool)
    keep[d] = False
    return xp.ascontiguousarray(xp.compress(keep, a, axis=axis))


def _gram(W, axis, cache):
    """W'^T W' (n', n') for "cols", W' W'^T (m', m') for "rows", computed once per `cache` dict.
    NumPy computes a product of a matrix with its own transpose by BLAS syrk: half a GEMM."""
    if axis not in cache:
        cache[axis] = W.T @ W if axis == "cols" else W @ W.T
    return cache[axis]


def _vectors(params, l, kind):
    """The vectors of layer l compared on `kind`, as the columns of a (view of a) matrix:
    "cols": W' (m', n'); "rows": W'^T (n', m'); "rows+b": [W', b']^T (n'+1, m')."""
    W = params[f"W{l}"]
    if kind == "cols":
        return W
    if kind == "rows":
        return W.T
    return array_module(W).concatenate([W, params[f"b{l}"][:, None]], axis=1).T


class RankReducer:
    """The RaRe term and the merges for one FactorizedMLP. Between steps it holds, per layer and
    kind ("cols", "rows", "rows+b" = rows with the bias), the closest pair (i, j, cos, |w_i|, |w_j|)."""

    def __init__(self, model, rules=FusionRules()):
        self.model, self.rules = model, rules
        self.pairs = {}
        self._scratch = {}

    # --- which axes -------------------------------------------------------------------------
    def fusable_axes(self, l):
        L, (m, n) = self.model.n_layers, self.model.shape(l)
        axes = []
        if l > 1 and n >= m and n > (self.model.sizes[-1] if l == L else 1):
            axes.append("cols")
        if l < L and m >= n and m > 1:
            axes.append("rows")
        return axes

    def rare_axes(self, l):
        return ("cols", "rows") if self.rules.rare_axes == "all" else tuple(self.fusable_axes(l))

    def _kinds(self, l, lambda1):
        """What layer l needs: the RaRe axes (with lambda1 > 0) and the fusable ones (rows with the bias)."""
        m, n = self.model.shape(l)
        kinds = {"cols": n, "rows": m, "rows+b": m}
        need = {a for a in self.rare_axes(l)} if lambda1 else set()
        need |= {"rows+b" if a == "rows" else a for a in self.fusable_axes(l)}
        return [k for k in ("cols", "rows", "rows+b") if k in need and kinds[k] >= 2]

    # --- finding the closest pairs ----------------------------------------------------------
    def refresh(self, params, lambda1, step=None, layers=None):
        """Find the closest pairs of the current W' (all layers, or `layers`), from fresh Grams; with
        search_every = K > 1, on steps that are not multiples of K only re-measure the pairs found last."""
        K = self.rules.search_every
        search = K == 1 or step is None or step % K == 0
        for l in layers or range(1, self.model.n_layers + 1):
            kinds = self._kinds(l, lambda1)
            if not search and all((l, k) in self.pairs for k in kinds):
                for k in kinds:
                    self.pairs[(l, k)] = self._measure(params, l, k, *self.pairs[(l, k)][:2])
                continue
            for k in ("cols", "rows", "rows+b"):
                self.pairs.pop((l, k), None)
            W, grams = params[f"W{l}"], {}
            for k in kinds:
                if k == "rows+b":  # the Gram of the rows of [W', b']: W' W'^T + b' b'^T
                    b = params[f"b{l}"]
                    G = array_module(W).multiply(b[:, None], b[None, :], out=self._buffer((len(b), len(b)), W.dtype))
                    G += _gram(W, "rows", grams)
                else:
                    G = _gram(W, k, grams)
                i, j, c = closest_pair(G, out=self._buffer(G.shape, G.dtype, 1))
                self.pairs[(l, k)] = (i, j, c, math.sqrt(max(float(G[i, i]), 0.0)), math.sqrt(max(float(G[j, j]), 0.0)))

    def _buffer(self, shape, dtype, slot=0):
        key = (shape, str(dtype), slot)  # reused scratch: a fresh 1 MB array costs page faults every step
        if key not in self._scratch:
            self._scratch[key] = self.model.xp.empty(shape, dtype=dtype)
        return self._scratch[key]

    def state(self):
        """The pairs' indices, for a checkpoint: [[layer, kind, i, j], ...]."""
        return [[l, k, v[0], v[1]] for (l, k), v in sorted(self.pairs.items())]

    def restore(self, params, lambda1, state):
        """Continue from :meth:`state` of a checkpoint: exact mode searches afresh (as the uninterrupted
        run did after its last update); with search_every > 1 the saved pairs are re-measured."""
        if self.rules.search_every == 1 or not state:
            return self.refresh(params, lambda1)
        self.pairs = {(l, k): self._measure(params, l, k, i, j) for l, k, i, j in state}

    def _measure(self, params, l, kind, i, j):
        """(i, j, cos, |v_i|, |v_j|) measured on the current vectors (used between searches)."""
        V = _vectors(params, l, "rows" if kind == "rows+b" else kind)  # a view, no copy
        vi, vj = V[:, i], V[:, j]
        gii, gjj, gij = float((vi * vi).sum()), float((vj * vj).sum()), float((vi * vj).sum())
        if kind == "rows+b":
            b = params[f"b{l}"]
            bi, bj = float(b[i]), float(b[j])
            gii, gjj, gij = gii + bi * bi, gjj + bj * bj, gij + bi * bj
        ni, nj = gii**0.5, gjj**0.5
        return i, j, (gij / (ni * nj) if ni > 0 and nj > 0 else 0.0), ni, nj

    # --- Eq. (16) -----------------------------------------------------------------------------
    def rare_term(self, params, grads, lambda1):
        """Return L_RaRe (Eq. 16) and add lambda1 dL_RaRe/dW' into `grads` (in place).

        L_RaRe = 1/(2c) sum_l m'n' [RaRe(W'_l) + RaRe(W'_l^T)], c = sum_l m'n'; RaRe at the closest pair
        (i, j) with cosine c_ij has gradient -2 c_ij (w_j/(|w_i||w_j|) - c_ij w_i/|w_i|^2) in w_i (and
        symmetrically), 0 elsewhere. With rare_axes="fusable" only the fusable axes' terms are summed.
        Uses the pairs of the last :meth:`refresh` (the current W').
        """
        L = self.model.n_layers
        sizes = {l: self.model.shape(l) for l in range(1, L + 1)}
        c_tot = sum(m * n for m, n in sizes.values())
        total = 0.0
        for l in range(1, L + 1):
            m, n = sizes[l]
            weight = m * n / (2.0 * c_tot)
            for axis in self.rare_axes(l):
                if (l, axis) not in self.pairs:  # fewer than two vectors: RaRe is 0
                    continue
                i, j, c, ni, nj = self.pairs[(l, axis)]
                total += weight * (1.0 - c * c)
                if ni == 0.0 or nj == 0.0:
                    continue
                V = _vectors(params, l, axis)
                gV = grads[f"W{l}"] if axis == "cols" else grads[f"W{l}"].T  # a view: updates grads
                a = lambda1 * weight * -2.0 * c
                wi, wj = V[:, i].copy(), V[:, j].copy()
                gV[:, i] += (a / (ni * nj)) * wj - (a * c / ni**2) * wi
                gV[:, j] += (a / (ni * nj)) * wi - (a * c / nj**2) * wj
        return total

    # --- Eqs. (8)-(13) ------------------------------------------------------------------------
    def _candidate(self, l, axis):
        """The closest pair on `axis` of layer l as (kept, dropped, cos, D_euc); rows are [w', b'] rows."""
        i, j, c, ni, nj = self.pairs[(l, "rows+b" if axis == "rows" else axis)]
        k, d = (i, j) if ni <= nj else (j, i)
        return k, d, c, min(ni, nj) * math.sqrt(max(0.0, 2.0 * (1.0 - abs(c))))

    def merge_step(self, params, opt_state, step, lambda1, probe=None):
        """Fuse, layer by layer, while the closest pair on a fusable axis meets Eq. (13). Call after each
        optimizer update and :meth:`refresh`. Updates params, Adam's state, the factors and the model in
        place; returns one record per merge. `probe` (B, 784), if given, is a fixed batch whose
        eval-mode logits are compared before and after each merge (probe_change: the largest
        absolute change of a logit)."""
        records, rules = [], self.rules
        before = None
        for l in range(1, self.model.n_layers + 1):
            while True:
                for axis in self.fusable_axes(l):
                    k, d, c, d_euc = self._candidate(l, axis)
                    if 1.0 - abs(c) < rules.tau_cos and d_euc < rules.tau_euc:
                        break
                else:
                    break
                if probe is not None and before is None:
                    before = self.model.forward(params, probe)[0]
                r, s = self._fuse(params, opt_state, l, axis, k, d)
                self.model.rebuild()
                self.refresh(params, lambda1, layers=[l])  # the merged layer's Grams and pairs, afresh
                rec = {"step": step, "layer": l, "axis": axis, "kept": k, "dropped": d, "r": r, "s": s,
                       "cos": c, "d_euc": d_euc, "shape": list(self.model.shape(l))}
                if probe is not None:
                    after = self.model.forward(params, probe)[0]
                    rec["probe_change"] = float(abs(after - before).max())
                    before = after
                records.append(rec)
        return records

    def _fuse(self, params, opt_state, l, axis, k, d):
        """Fuse vector d into k on `axis` of layer l (Eqs. 8-12, corrected); returns (r, s)."""
        rules = self.rules
        cols = axis == "cols"
        V = _vectors(params, l, "cols" if cols else "rows+b")
        r = fusion_ratio(V[:, d].astype(np.float64), V[:, k].astype(np.float64), rules.ratio)
        s = math.sqrt(r * r + 1.0)
        for name in [f"W{l}"] if cols else [f"W{l}", f"b{l}"]:
            p, m, v = params[name], opt_state["m"][name], opt_state["v"][name]
            by_col = cols and p.ndim == 2
            P, M, V = (a.T if by_col else a for a in (p, m, v))  # views: the merged vectors along axis 0
            dt = p.dtype.type
            P[k] *= dt(s)  # Eq. (10): the kept vector scaled by s
            if rules.adam_merge == "carry":  # the merged vector's gradient is (r g_d + g_k)/s
                M[k] = (M[d] * dt(r) + M[k]) / dt(s)
                V[k] = (V[d] * dt(r * r) + V[k]) / dt(s * s)
            else:
                M[k], V[k] = 0, 0
            ax = 1 if by_col else 0
            params[name] = _delete(p, d, ax)
            opt_state["m"][name], opt_state["v"][name] = _delete(m, d, ax), _delete(v, d, ax)
        f = self.model.factors[l - 1]
        (f.fuse_columns if cols else f.fuse_rows)(k, d, r, s)
        return r, s
