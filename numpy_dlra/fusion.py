"""Dynamic Low-Rank Approximation's per-step work: the RaRe term (Eqs. 6, 7, 16) and the merges (Eqs. 8-13).

One Gram matrix per layer and axis serves everything: columns G = W'^T W' (n' x n'), rows
G = W' W'^T (m' x m'). From a Gram, the closest pair (max |cos|) gives the RaRe value, its
gradient and the Eq. (13) test; a merge updates both Grams of its layer in O(n^2) (the merged
axis: drop d, scale k by s; the other axis: a rank-2 update). The Grams are computed once per
step, after the optimizer update; the merges test them, and the next step's loss reuses them.
After a step with merges, the merged layer's Grams are computed afresh, so at every step boundary
each Gram is a pure function of W' (which is what lets a resumed run continue bit for bit).

Rules (paper Sec. 4.1, 4.4; ../shared/notes/method.md Sec. 3):
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


def closest_pair(G):
    """(i, j, c): the pair i < j of vectors with the largest |cos| given their Gram G (n, n), c their cosine.

    A zero vector has cosine 0 with everything. Needs n >= 2.
    """
    xp = array_module(G)
    n = G.shape[0]
    d = xp.sqrt(xp.maximum(xp.diagonal(G), 0))
    inv = xp.where(d > 0, 1.0 / xp.where(d > 0, d, 1.0), 0.0).astype(G.dtype)
    C = G * inv[None, :]  # (n, n) cosines, in two passes
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


class RankReducer:
    """The RaRe term and the merges for one FactorizedMLP; holds the Grams between steps (no other state)."""

    def __init__(self, model, rules=FusionRules()):
        self.model, self.rules = model, rules
        self.grams = {}  # (layer, "cols" | "rows") -> Gram of the current W'

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

    def _needed(self, l, lambda1):
        return set(self.fusable_axes(l)) | (set(self.rare_axes(l)) if lambda1 else set())

    def refresh(self, params, lambda1, layers=None):
        """Compute afresh the Grams needed now (all layers, or `layers`), dropping the others."""
        for l in layers or range(1, self.model.n_layers + 1):
            need = self._needed(l, lambda1)
            for axis in ("cols", "rows"):
                self.grams.pop((l, axis), None)
                if axis in need:
                    self._gram(params, l, axis)

    def _gram(self, params, l, axis):
        """The Gram of layer l's columns (W'^T W', n' x n') or rows (W' W'^T, m' x m'), computed if missing.
        NumPy computes a product of a matrix with its own transpose by BLAS syrk (half the work)."""
        if (l, axis) not in self.grams:
            W = params[f"W{l}"]
            self.grams[(l, axis)] = W.T @ W if axis == "cols" else W @ W.T
        return self.grams[(l, axis)]

    # --- Eq. (16) -----------------------------------------------------------------------------
    def rare_term(self, params, grads, lambda1):
        """Return L_RaRe (Eq. 16) and add lambda1 dL_RaRe/dW' into `grads` (in place).

        L_RaRe = 1/(2c) sum_l m'n' [RaRe(W'_l) + RaRe(W'_l^T)], c = sum_l m'n'; RaRe at the closest pair
        (i, j) with cosine c_ij has gradient -2 c_ij (w_j/(|w_i||w_j|) - c_ij w_i/|w_i|^2) in w_i (and
        symmetrically), 0 elsewhere. With rare_axes="fusable" only the fusable axes' terms are summed.
        """
        L = self.model.n_layers
        sizes = {l: self.model.shape(l) for l in range(1, L + 1)}
        c_tot = sum(m * n for m, n in sizes.values())
        total = 0.0
        for l in range(1, L + 1):
            m, n = sizes[l]
            weight = m * n / (2.0 * c_tot)
            W = params[f"W{l}"]
            for axis in self.rare_axes(l):
                if (n if axis == "cols" else m) < 2:
                    continue
                G = self._gram(params, l, axis)
                i, j, c = closest_pair(G)
                total += weight * (1.0 - c * c)
                ni, nj = math.sqrt(float(G[i, i])), math.sqrt(float(G[j, j]))
                if ni == 0.0 or nj == 0.0:
                    continue
                V = W if axis == "cols" else W.T  # vectors are V's columns; gV a view into grads
                gV = grads[f"W{l}"] if axis == "cols" else grads[f"W{l}"].T
                a = lambda1 * weight * -2.0 * c
                wi, wj = V[:, i].copy(), V[:, j].copy()
                gV[:, i] += (a / (ni * nj)) * wj - (a * c / ni**2) * wi
                gV[:, j] += (a / (ni * nj)) * wi - (a * c / nj**2) * wj
        return total

    # --- Eqs. (8)-(13) ------------------------------------------------------------------------
    def _candidate(self, params, l, axis):
        """The closest pair on `axis` of layer l as (kept, dropped, cos, D_euc) -- rows augmented with b'."""
        G = self._gram(params, l, axis)
        if axis == "rows":
            b = params[f"b{l}"]
            G = G + b[:, None] * b[None, :]  # Gram of [W', b'] rows: (m', m')
        i, j, c = closest_pair(G)
        ni, nj = float(G[i, i]), float(G[j, j])
        k, d = (i, j) if ni <= nj else (j, i)
        return k, d, c, math.sqrt(min(ni, nj)) * math.sqrt(max(0.0, 2.0 * (1.0 - abs(c))))

    def merge_step(self, params, opt_state, step, lambda1, probe=None):
        """Fuse, layer by layer, while the closest pair on a fusable axis meets Eq. (13). Call after each
        optimizer update, with the Grams of the updated W' (see :meth:`refresh`). Updates params,
        Adam's state, the factors and the model in place; returns one record per merge.
        `probe` (B, 784), if given, is a fixed batch whose eval-mode logits are compared before and
        after each merge (probe_change: the largest absolute change of a logit)."""
        records, rules = [], self.rules
        before = None
        for l in range(1, self.model.n_layers + 1):
            merged = False
            while True:
                for axis in self.fusable_axes(l):
                    k, d, c, d_euc = self._candidate(params, l, axis)
                    if 1.0 - abs(c) < rules.tau_cos and d_euc < rules.tau_euc:
                        break
                else:
                    break
                if probe is not None and before is None:
                    before = self.model.forward(params, probe)[0]
                r, s = self._fuse(params, opt_state, l, axis, k, d)
                merged = True
                self.model.rebuild()
                rec = {"step": step, "layer": l, "axis": axis, "kept": k, "dropped": d, "r": r, "s": s,
                       "cos": c, "d_euc": d_euc, "shape": list(self.model.shape(l))}
                if probe is not None:
                    after = self.model.forward(params, probe)[0]
                    rec["probe_change"] = float(abs(after - before).max())
                    before = after
                records.append(rec)
            if merged:
                self.refresh(params, lambda1, [l])
        return records

    def _fuse(self, params, opt_state, l, axis, k, d):
        """Fuse vector d into k on `axis` of layer l (Eqs. 8-12, corrected); returns (r, s)."""
        rules, xp = self.rules, array_module(params[f"W{l}"])
        W, b = params[f"W{l}"], params[f"b{l}"]
        cols = axis == "cols"
        if cols:
            vd, vk = W[:, d], W[:, k]
        else:
            vd, vk = xp.concatenate([W[d], b[d:d + 1]]), xp.concatenate([W[k], b[k:k + 1]])
        r = fusion_ratio(vd.astype(np.float64), vk.astype(np.float64), rules.ratio)
        s = math.sqrt(r * r + 1.0)
        wd, wk = (W[:, d], W[:, k]) if cols else (W[d], W[k])
        wd, wk = wd.copy(), wk.copy()  # the other axis' Gram needs the vectors before the merge
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
        same, other = ("cols", "rows") if cols else ("rows", "cols")
        if (l, same) in self.grams:  # the merged axis: scale k by s, drop d
            G = self.grams[(l, same)]
            G[k] *= G.dtype.type(s)
            G[:, k] *= G.dtype.type(s)
            self.grams[(l, same)] = _delete(_delete(G, d, 0), d, 1)
        if (l, other) in self.grams:  # the other axis: V V^T - w_d w_d^T + (s^2 - 1) w_k w_k^T
            G = self.grams[(l, other)]
            G -= wd[:, None] * wd[None, :]
            G += G.dtype.type(s * s - 1.0) * (wk[:, None] * wk[None, :])
        return r, s
