"""Merging (paper Eqs. 8-13): when a pair of vectors is parallel enough, fuse it and shrink W'.

After every optimizer update (Algorithm 1), layer by layer, while the closest pair on a fusable
axis of the current W' meets Eq. (13) (:func:`numpy_dlra.dlra.equations.meets_eq13`), the longer
vector d is fused into the shorter one k: w_d ~ r w_k, s = sqrt(r^2 + 1), w_k <- s w_k, w_d is
removed, and Q (columns) or P (rows) follow the corrected Eqs. (8)-(12), so the layer's function
is unchanged when the pair is exactly parallel. Rows are the rows of W' (the pair RaRe pulls
together); the bias of the merged row is the least-squares b_k <- (r b_d + b_k)/s, exact when
b_d = r b_k. (With ``row_vectors = "wb"``, rows are [w', b'] rows and the bias is scaled with them.) Adam's moments follow the merged
vector (``adam_merge``). The model is then rebuilt and the merged layer's pairs computed afresh.

Eq. (13) is asymmetric in (i, j); the reading here rescales the dropped (longer) vector to the
kept (shorter) one: D_euc = |w_k| sqrt(2 (1 - |cos|)), from the Gram (absolute error about
|w_k| sqrt(2 eps), 5e-4 |w_k| in float32, far below tau_euc = 0.1).
"""
import math

import numpy as np

from ..nn.backend import array_module, to_numpy
from .equations import fusion_ratio, meets_eq13
from .layer import fn_scale
from .pairs import vectors


def candidate(pairs, l, axis, params=None):
    """The closest pair on `axis` of layer l as (kept, dropped, cos, D_euc): the pair RaRe acts on.

    The pair is the closest on W' (rows with ``row_vectors = "wb"``: on [W', b']). With
    ``rules.eq13_on == "effective"`` (needs `params`) its cosine and D_euc are those of the network's
    own vectors, FN's c = k g / ||W'||_F times W': c w'_j (the cosine is unchanged, D_euc scales by
    c); with "wb", rows [c w'_i, b'_i] (the bias is not scaled, so the cosine changes too).
    """
    kind = pairs.test_kind(axis)
    i, j, c, ni, nj = pairs.pairs[(l, kind)]
    if pairs.rules.eq13_on == "effective" and pairs.model.fn_k:  # without FN the network's weight is W' itself
        W = params[f"W{l}"]
        s = fn_scale(W, params[f"g{l}"], pairs.model.fn_k[l - 1])
        if kind != "rows+b":
            ni, nj = s * ni, s * nj
        else:  # rows [c w'_i, b'_i]: the bias is not scaled, so the cosine changes too
            _, _, c, ni, nj = pairs.measure(params, l, "rows+b", i, j, scale=s)
    k, d = (i, j) if ni <= nj else (j, i)
    return k, d, c, min(ni, nj) * math.sqrt(max(0.0, 2.0 * (1.0 - abs(c))))


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
            for axis in pairs.fusable_axes(l):
                found = None if axis in done else find_pair(pairs, params, l, axis)
                if found:
                    k, d, c, d_euc = found
                    break
            else:
                break
            if probe is not None and before is None:
                before = model.forward(params, probe)[0]
            r, s = fuse(model, params, opt_state, l, axis, k, d, rules)
            model.rebuild()
            pairs.refresh(params, layers=[l])  # the merged layer's Grams and pairs, afresh
            if rules.merge_pairs == "one":
                done.add(axis)
            rec = {"step": step, "layer": l, "axis": axis, "kept": k, "dropped": d, "r": r, "s": s,
                   "cos": c, "d_euc": d_euc, "shape": list(model.shape(l))}
            if probe is not None:
                after = model.forward(params, probe)[0]
                rec["probe_change"] = float(abs(after - before).max())
                before = after
            records.append(rec)
    return records


def find_pair(pairs, params, l, axis):
    """The pair to fuse on `axis` of layer l as (kept, dropped, cos, D_euc), or None if Eq. (13) admits none.

    The closest pair, if it meets Eq. (13). With ``merge_pairs == "any"``, when the closest pair is
    parallel enough (1 - |cos| < tau_cos) but too far apart (D_euc >= tau_euc), the Gram of the axis is
    formed once more and the most parallel pair that meets both tests is returned. Only then: if the
    closest pair fails the cosine test, every other pair does (on rows read with ``eq13_on ==
    "effective"`` only nearly: the search ranks [w', b'] rows, the test reads [c w', b'] rows).
    """
    rules = pairs.rules
    k, d, c, d_euc = candidate(pairs, l, axis, params)
    if meets_eq13(c, d_euc, rules.tau_cos, rules.tau_euc):
        return k, d, c, d_euc
    if rules.merge_pairs != "any" or not 1.0 - abs(c) < rules.tau_cos:
        return None
    kind = pairs.test_kind(axis)
    V = to_numpy(vectors(params, l, kind)).astype(np.float64)  # rare: on the host
    if rules.eq13_on == "effective" and pairs.model.fn_k:  # the network's vectors: c W' (a bias, V's last row, unscaled)
        c_l = fn_scale(params[f"W{l}"], params[f"g{l}"], pairs.model.fn_k[l - 1])
        V[: V.shape[0] - (kind == "rows+b")] *= c_l
    G = V.T @ V  # (n, n) Gram of the compared vectors
    norms = np.sqrt(np.maximum(np.diag(G), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.where(np.outer(norms, norms) > 0, G / np.outer(norms, norms), 0.0)
    i, j = np.nonzero(np.triu(1.0 - np.abs(C) < rules.tau_cos, 1))
    for a in np.argsort(-np.abs(C[i, j]), kind="stable"):
        ci = float(C[i[a], j[a]])
        ni, nj = norms[i[a]], norms[j[a]]
        de = float(min(ni, nj)) * math.sqrt(max(0.0, 2.0 * (1.0 - abs(ci))))
        if meets_eq13(ci, de, rules.tau_cos, rules.tau_euc):
            kk, dd = (int(i[a]), int(j[a])) if ni <= nj else (int(j[a]), int(i[a]))
            return kk, dd, ci, de
    return None


def fuse(model, params, opt_state, l, axis, k, d, rules):
    """Fuse vector d into k on `axis` ("cols" or "rows") of layer l (Eqs. 8-12, corrected); returns (r, s).

    With ``fuse_ratio == "sum"`` and a kept vector whose entries sum to (nearly) 0, where the paper's
    estimator is undefined, r is the least-squares ratio (both are exact for parallel vectors).
    Columns: W' (m', n') loses column d, Q loses row d. Rows: W' loses row d and b' entry d, P loses
    column d; r is that of the W' rows and b_k <- (r b_d + b_k)/s (with ``row_vectors == "wb"``, r is
    that of the [w', b'] rows and b_k <- s b_k). Adam's m and v lose the same entries; with ``rules.adam_merge == "carry"`` the kept
    entries become m_k <- (r m_d + m_k)/s (exact: the merged vector's gradient is (r g_d + g_k)/s)
    and v_k <- (r^2 v_d + v_k)/s^2 (its analogue); with "reset" they are zeroed.
    """
    cols = axis == "cols"
    with_bias = not cols and rules.row_vectors == "wb"
    V = vectors(params, l, "cols" if cols else "rows+b" if with_bias else "rows")
    w_d, w_k = to_numpy(V[:, d]).astype(np.float64), to_numpy(V[:, k]).astype(np.float64)  # two vectors, host
    ratio = rules.fuse_ratio
    if ratio == "sum" and abs(w_k.sum()) <= 1e-6 * np.abs(w_k).sum():
        ratio = "lstsq"  # the paper's sum(w_d)/sum(w_k) is undefined (or unstable) here; the pair passed Eq. (13)
    r = fusion_ratio(w_d, w_k, ratio)
    s = math.sqrt(r * r + 1.0)
    for name in [f"W{l}"] if cols else [f"W{l}", f"b{l}"]:
        p, m, v = params[name], opt_state["m"][name], opt_state["v"][name]
        by_col = cols and p.ndim == 2
        P, M, V = (a.T if by_col else a for a in (p, m, v))  # views: the merged vectors along axis 0
        dt = p.dtype.type
        if name[0] == "b" and not with_bias:
            P[k] = (P[d] * dt(r) + P[k]) / dt(s)  # the bias of the merged row, least squares: b_k <- (r b_d + b_k)/s
        else:
            P[k] *= dt(s)  # Eq. (10): the kept vector scaled by s
        if rules.adam_merge == "carry":  # the merged vector's gradient is (r g_d + g_k)/s
            M[k] = (M[d] * dt(r) + M[k]) / dt(s)
            V[k] = (V[d] * dt(r * r) + V[k]) / dt(s * s)
        else:
            M[k], V[k] = 0, 0
        ax = 1 if by_col else 0
        params[name] = _delete(p, d, ax)
        opt_state["m"][name], opt_state["v"][name] = _delete(m, d, ax), _delete(v, d, ax)
    f = model.factors[l - 1]
    (f.fuse_columns if cols else f.fuse_rows)(k, d, r, s)
    return r, s


def _delete(a, d, axis):
    """`a` without index d along `axis`, as a fresh contiguous array."""
    xp = array_module(a)
    keep = xp.ones(a.shape[axis], dtype=bool)
    keep[d] = False
    return xp.ascontiguousarray(xp.compress(keep, a, axis=axis))
