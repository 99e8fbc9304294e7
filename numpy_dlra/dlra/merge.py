"""Merging (paper Eqs. 8-13): when the closest pair of vectors is parallel enough, fuse it and shrink W'.

After every optimizer update (Algorithm 1), layer by layer, while the closest pair on a fusable axis
of the current W' meets Eq. (13), the longer vector d is fused into the shorter one k. Each function
below does one thing:

    candidate    find: the closest pair (kept k, dropped d) and its cos and D_euc, as Eq. (13) reads them
    find_pair    test: the pair to fuse, or None (Eq. 13; ``merge_pairs = "any"`` looks further)
    fuse         fuse: W', Q or P, the bias and Adam's moments (Eqs. 8-12, corrected)
    merge_step   record: the loop over layers, and one record per merge

The pair is the one RaRe pulls together (:mod:`.pairs`): columns of W', or rows of W' (with
``row_vectors = "wb"``, rows of [W', b']). With w_d ~ r w_k and s = sqrt(r^2 + 1), w_k <- s w_k and
w_d is removed; Q (columns) or P (rows) follow, so the layer's function is unchanged when the pair
is exactly parallel. The bias of a merged row of W' is the least-squares b_k <- (r b_d + b_k)/s,
exact when b_d = r b_k. The reading flags pick small functions from the tables :data:`BIAS` and
:data:`MOMENTS` instead of branching inside the arithmetic.

Eq. (13) is asymmetric in (i, j); the reading here rescales the dropped (longer) vector to the kept
(shorter) one: D_euc = |w_k| sqrt(2 (1 - |cos|)) (:func:`numpy_dlra.dlra.equations.d_euc_from_cos`),
from the Gram (absolute error about |w_k| sqrt(2 eps), 5e-4 |w_k| in float32, far below tau_euc).
"""
import math
from typing import NamedTuple

import numpy as np

from ..nn.backend import array_module, to_numpy
from .equations import cos_matrix, d_euc_from_cos, fusion_ratio, meets_eq13
from .layer import fn_scale
from .pairs import ROW_KIND, vectors


class Pair(NamedTuple):
    """A pair of vectors of one layer and axis: kept k (the shorter), dropped d, their cos and D_euc."""

    kept: int
    dropped: int
    cos: float
    d_euc: float


def _pair(i, j, cos, norm_i, norm_j):
    """The Pair of vectors i, j with norms norm_i, norm_j: k is the shorter; D_euc of Eq. (13)."""
    k, d = (i, j) if norm_i <= norm_j else (j, i)
    return Pair(k, d, cos, d_euc_from_cos(min(norm_i, norm_j), cos))


def candidate(pairs, l, axis, params=None):
    """Find: the closest pair on `axis` of layer l, the pair RaRe acts on, as a :class:`Pair`.

    With ``rules.eq13_on == "effective"`` (needs `params`) its cosine and D_euc are those of the
    network's own vectors, FN's c = k g / ||W'||_F times W': c w'_j (the cosine is unchanged, D_euc
    scales by c); with ``row_vectors = "wb"``, rows [c w'_i, b'_i] (the bias is not scaled, so the
    cosine changes too).
    """
    kind = pairs.test_kind(axis)
    i, j, cos, norm_i, norm_j = pairs.pairs[(l, kind)]
    if pairs.rules.eq13_on == "effective" and pairs.model.fn_k:  # without FN the network's weight is W' itself
        c_fn = fn_scale(params[f"W{l}"], params[f"g{l}"], pairs.model.fn_k[l - 1])
        if kind == "rows+b":  # [c w'_i, b'_i]: measured afresh
            _, _, cos, norm_i, norm_j = pairs.measure(params, l, kind, i, j, scale=c_fn)
        else:
            norm_i, norm_j = c_fn * norm_i, c_fn * norm_j
    return _pair(i, j, cos, norm_i, norm_j)


def find_pair(pairs, params, l, axis):
    """Test: the pair to fuse on `axis` of layer l (a :class:`Pair`), or None if Eq. (13) admits none.

    The closest pair, if it meets Eq. (13). With ``merge_pairs == "any"``, when the closest pair is
    parallel enough (1 - |cos| < tau_cos) but too far apart (D_euc >= tau_euc), the cosine matrix of
    the axis is formed (Eq. 7) and the most parallel pair that meets both tests is returned. Only then:
    if the closest pair fails the cosine test, every other pair does (on rows read as [c w', b'] only
    nearly: the search ranks [w', b'] rows).
    """
    rules = pairs.rules
    pair = candidate(pairs, l, axis, params)
    if meets_eq13(pair.cos, pair.d_euc, rules.tau_cos, rules.tau_euc):  # Eq. (13)
        return pair
    if rules.merge_pairs != "any" or not 1.0 - abs(pair.cos) < rules.tau_cos:
        return None
    return _most_parallel_passing(pairs, params, l, axis)


def _most_parallel_passing(pairs, params, l, axis):
    """Of all pairs on `axis` of layer l, the most parallel one that meets Eq. (13), or None (on the host)."""
    rules, kind = pairs.rules, pairs.test_kind(axis)
    V = to_numpy(vectors(params, l, kind)).astype(np.float64)  # the compared vectors as columns, (dim, n)
    if rules.eq13_on == "effective" and pairs.model.fn_k:  # the network's vectors: c W' (a bias row stays unscaled)
        V[: V.shape[0] - (kind == "rows+b")] *= fn_scale(params[f"W{l}"], params[f"g{l}"], pairs.model.fn_k[l - 1])
    C = cos_matrix(V)  # Eq. (7), (n, n)
    norms = np.linalg.norm(V, axis=0)
    i, j = np.nonzero(np.triu(1.0 - np.abs(C) < rules.tau_cos, 1))
    for a in np.argsort(-np.abs(C[i, j]), kind="stable"):
        pair = _pair(int(i[a]), int(j[a]), float(C[i[a], j[a]]), float(norms[i[a]]), float(norms[j[a]]))
        if meets_eq13(pair.cos, pair.d_euc, rules.tau_cos, rules.tau_euc):
            return pair
    return None


def _bias_least_squares(b, k, d, r, s, dt):
    b[k] = (b[d] * dt(r) + b[k]) / dt(s)  # the merged row's bias, least squares: b_k <- (r b_d + b_k)/s


def _bias_scaled(b, k, d, r, s, dt):
    b[k] *= dt(s)  # [w_k, b_k] <- s [w_k, b_k], Eq. (10) on the augmented row


BIAS = {"w": _bias_least_squares, "wb": _bias_scaled}  # the bias at a row merge, by ``row_vectors``


def _moments_carried(m, v, k, d, r, s, dt):
    m[k] = (m[d] * dt(r) + m[k]) / dt(s)  # exact: the merged vector's gradient is (r g_d + g_k)/s
    v[k] = (v[d] * dt(r * r) + v[k]) / dt(s * s)  # its analogue for the squares


def _moments_reset(m, v, k, d, r, s, dt):
    m[k], v[k] = 0, 0


MOMENTS = {"carry": _moments_carried, "reset": _moments_reset}  # Adam's moments at a merge, by ``adam_merge``


def fuse(model, params, opt_state, l, axis, k, d, rules):
    """Fuse vector d into k on `axis` ("cols" or "rows") of layer l (Eqs. 8-12, corrected); returns (r, s).

    r of Eq. (9) comes from the compared vectors (``fuse_ratio``; with "sum" and a kept vector whose
    entries sum to (nearly) 0, where the paper's estimator is undefined, least squares), s = sqrt(r^2+1).
    Columns: W' (m', n') loses column d and column k becomes s w_k (Eq. 10); Q loses row d, row k
    becomes (r q_d + q_k)/s (Eq. 11, corrected). Rows: W' loses row d, row k becomes s w_k; b' loses
    entry d, b_k by :data:`BIAS`; P loses column d, column k becomes (r p_d + p_k)/s. Adam's m and v
    lose the same entries, the kept ones set by :data:`MOMENTS`.
    """
    cols = axis == "cols"
    V = vectors(params, l, "cols" if cols else ROW_KIND[rules.row_vectors])  # the compared vectors, as columns
    w_d, w_k = to_numpy(V[:, d]).astype(np.float64), to_numpy(V[:, k]).astype(np.float64)  # two vectors, host
    ratio = rules.fuse_ratio
    if ratio == "sum" and abs(w_k.sum()) <= 1e-6 * np.abs(w_k).sum():
        ratio = "lstsq"  # the paper's sum(w_d)/sum(w_k) is undefined (or unstable) here; the pair passed Eq. (13)
    r = fusion_ratio(w_d, w_k, ratio)  # Eq. (9)
    s = math.sqrt(r * r + 1.0)
    for name in [f"W{l}"] if cols else [f"W{l}", f"b{l}"]:
        p, m, v = params[name], opt_state["m"][name], opt_state["v"][name]
        by_col = cols and p.ndim == 2
        p_, m_, v_ = (a.T if by_col else a for a in (p, m, v))  # views: the merged vectors along axis 0
        dt = p.dtype.type
        if name[0] == "b":
            BIAS[rules.row_vectors](p_, k, d, r, s, dt)
        else:
            p_[k] *= dt(s)  # Eq. (10): the kept vector scaled by s
        MOMENTS[rules.adam_merge](m_, v_, k, d, r, s, dt)
        ax = 1 if by_col else 0
        params[name] = _delete(p, d, ax)
        opt_state["m"][name], opt_state["v"][name] = _delete(m, d, ax), _delete(v, d, ax)
    f = model.factors[l - 1]
    (f.fuse_columns if cols else f.fuse_rows)(k, d, r, s)  # Eq. (11) on Q, or its mirror on P
    return r, s


def merge_step(pairs, params, opt_state, step, probe=None):
    """Fuse, layer by layer, the pairs that Eq. (13) admits (``rules.merge_pairs`` says which).

    "closest" (default): while the closest pair on a fusable axis meets Eq. (13), fuse it; "one": at
    most one fusion per layer and axis and step, the closest pair's ("the pair that satisfies (13) is
    merged"); "any": as "closest", and when the closest pair is parallel enough but fails the
    Euclidean test, the most parallel pair that passes both (:func:`find_pair`).
    Call after each optimizer update and ``pairs.refresh``. Updates params, Adam's state, the
    factors and the model in place; returns one record per merge. `probe` (B, n_in), if given, is a
    fixed batch whose eval-mode logits are compared before and after each merge (probe_change: the
    largest absolute change of a logit).
    """
    model, rules = pairs.model, pairs.rules
    records, before = [], None
    for l in range(1, model.n_layers + 1):
        done = set()  # the axes of layer l fused this step (rules.merge_pairs == "one" fuses each once)
        while True:
            axis, pair = _next_merge(pairs, params, l, done)
            if pair is None:
                break
            if probe is not None and before is None:
                before = model.forward(params, probe)[0]
            r, s = fuse(model, params, opt_state, l, axis, pair.kept, pair.dropped, rules)
            model.rebuild()
            pairs.refresh(params, layers=[l])  # the merged layer's Grams and pairs, afresh
            if rules.merge_pairs == "one":
                done.add(axis)
            rec = {"step": step, "layer": l, "axis": axis, "kept": pair.kept, "dropped": pair.dropped, "r": r,
                   "s": s, "cos": pair.cos, "d_euc": pair.d_euc, "shape": list(model.shape(l))}
            if probe is not None:
                after = model.forward(params, probe)[0]
                rec["probe_change"] = float(abs(after - before).max())
                before = after
            records.append(rec)
    return records


def _next_merge(pairs, params, l, done):
    """(axis, Pair) of the first fusable axis of layer l (columns, then rows) whose pair Eq. (13) admits,
    skipping the axes in `done`; (None, None) when there is none."""
    for axis in pairs.fusable_axes(l):
        pair = None if axis in done else find_pair(pairs, params, l, axis)
        if pair:
            return axis, pair
    return None, None


def _delete(a, d, axis):
    """`a` without index d along `axis`, as a fresh contiguous array."""
    xp = array_module(a)
    keep = xp.ones(a.shape[axis], dtype=bool)
    keep[d] = False
    return xp.ascontiguousarray(xp.compress(keep, a, axis=axis))
