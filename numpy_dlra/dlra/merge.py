"""Merging (paper Eqs. 7-13): when the closest pair of vectors is parallel enough, fuse it and shrink W'.

After every optimizer update (Algorithm 1), layer by layer, while the closest pair on a fusable axis
of the current W' meets Eq. (13), the longer vector d is fused into the shorter one k. Each function
below does one thing:

    candidate    find: the closest pair (kept k, dropped d) and its cos and D_euc, as Eq. (13) reads them
    find_pair    test: the pair to fuse, or None (Eq. 13; ``merge_pairs = "any"`` looks further)
    merge_step   record: the loop over layers, and one record per merge; the fusion itself (W', Q or P, the
                 bias and Adam's moments, Eqs. 7-12 corrected) is the layer's: FactorizedLayer.fuse

The pair is the one RaRe pulls together (:mod:`.pairs`): columns of W', or rows of W' (with
``row_vectors = "wb"``, rows of [W', b']). With w_d ~ r w_k and s = sqrt(r^2 + 1), w_k <- s w_k and
w_d is removed; Q (columns) or P (rows) follow, so the layer's function is unchanged when the pair
is exactly parallel. The bias of a merged row of W' is the least-squares b_k <- (r b_d + b_k)/s,
exact when b_d = r b_k. The reading flags pick small functions from the tables
:data:`numpy_dlra.dlra.layer.BIAS` and ``MOMENTS`` instead of branching inside the arithmetic.

Eq. (13) is asymmetric in (i, j); the reading here rescales the dropped (longer) vector to the kept
(shorter) one: D_euc = |w_k| sqrt(2 (1 - |cos|)) (:func:`numpy_dlra.dlra.equations.d_euc_from_cos`),
from the Gram (absolute error about |w_k| sqrt(2 eps), 5e-4 |w_k| in float32, far below tau_euc).
"""
from typing import NamedTuple

import numpy as np

from ..nn.backend import to_numpy
from .equations import cos_matrix, d_euc_from_cos, meets_eq13


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
    kind, layer = pairs.test_kind(axis), pairs.model.layers[l - 1]
    i, j, cos, norm_i, norm_j = pairs.pairs[(l, kind)]
    if pairs.rules.eq13_on == "effective" and layer.k is not None:  # without FN the network's weight is W' itself
        c_fn = layer.c_fn(params)
        if kind == "rows+b":  # [c w'_i, b'_i]: measured afresh
            _, _, cos, norm_i, norm_j = pairs.measure(params, l, kind, i, j, scale=c_fn)
        else:
            norm_i, norm_j = c_fn * norm_i, c_fn * norm_j
    return _pair(i, j, cos, norm_i, norm_j)


def find_pair(pairs, params, l, axis):
    """Test: the pair to fuse on `axis` of layer l (a :class:`Pair`), or None if Eq. (13) admits none.

    The closest pair, if it meets Eq. (13). With ``merge_pairs == "any"``, when the closest pair is
    parallel enough (1 - |cos| < tau_cos) but too far apart (D_euc >= tau_euc), the cosine matrix of
    the axis is formed (Eq. 6) and the most parallel pair that meets both tests is returned. Only then:
    if the closest pair fails the cosine test, every other pair does (on rows read as [c w', b'] only
    nearly: the search ranks [w', b'] rows).
    """
    rules, kind = pairs.rules, pairs.test_kind(axis)
    if kind != "rows+b" and not 1.0 - abs(pairs.pairs[(l, kind)][2]) < rules.tau_cos:
        return None  # Eq. (13)'s cosine test fails whatever FN's c is (it scales D_euc only): no pair, no c computed
    pair = candidate(pairs, l, axis, params)
    if meets_eq13(pair.cos, pair.d_euc, rules.tau_cos, rules.tau_euc):  # Eq. (13)
        return pair
    if rules.merge_pairs != "any" or not 1.0 - abs(pair.cos) < rules.tau_cos:
        return None
    return _most_parallel_passing(pairs, params, l, axis)


def _most_parallel_passing(pairs, params, l, axis):
    """Of all pairs on `axis` of layer l, the most parallel one that meets Eq. (13), or None (on the host)."""
    rules, kind, layer = pairs.rules, pairs.test_kind(axis), pairs.model.layers[l - 1]
    V = to_numpy(layer.vectors(params, kind)).astype(np.float64)  # the compared vectors as columns, (dim, n)
    if rules.eq13_on == "effective" and layer.k is not None:  # the network's vectors: c W' (a bias row stays unscaled)
        V[: V.shape[0] - (kind == "rows+b")] *= layer.c_fn(params)
    C = cos_matrix(V)  # Eq. (6), (n, n)
    norms = np.linalg.norm(V, axis=0)
    i, j = np.nonzero(np.triu(1.0 - np.abs(C) < rules.tau_cos, 1))
    for a in np.argsort(-np.abs(C[i, j]), kind="stable"):
        pair = _pair(int(i[a]), int(j[a]), float(C[i[a], j[a]]), float(norms[i[a]]), float(norms[j[a]]))
        if meets_eq13(pair.cos, pair.d_euc, rules.tau_cos, rules.tau_euc):
            return pair
    return None


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
            r, s = model.layers[l - 1].fuse(params, opt_state, axis, pair.kept, pair.dropped, rules)  # Eqs. (7)-(12)
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
