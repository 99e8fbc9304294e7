"""Every equation of the method as a small pure function on arrays (NumPy or CuPy).

These are the reference definitions: readable, stateless, one equation each. The training
engine may compute the same quantities faster (one Gram matrix reused, incremental updates), and
the tests check that it agrees with these.

Notation (paper Sec. 3-4): a layer's weight W (m x n) is held as P W' Q with W' (m' x n')
trainable, P (m x m') and Q (n' x n) fixed. "Columns" are input coordinates, "rows" outputs.

Erratum. The printed Eq. (11) replaces the kept row of Q by (q_i + q_j r) / s, where w_i = r w_j
is the dropped column. That does not preserve W' Q; the function-preserving row is
(r q_i + q_j) / s (see `fuse_columns`; tests/test_erratum.py shows, for any W', Q and r, that the
printed row misses W' Q by (r - 1) w_j (q_i - q_j)). Likewise Eq. (7) should read
x'_k = (r x_d + x_k) / s.
"""
import math

from ..nn.backend import array_module


def _col_norms(W):
    xp = array_module(W)
    return xp.sqrt((W * W).sum(axis=0))  # (n,)


def _norm(v):
    """Euclidean norm of a vector, as a float."""
    return float(array_module(v).sqrt((v * v).sum()))


def cos_matrix(W):
    """Paper Eq. (6): D_cos(i, j) = <w_i, w_j> / (|w_i| |w_j|) for all pairs of columns of W.

    Parameters
    ----------
    W : (m, n) array

    Returns
    -------
    (n, n) array of cosines; a zero column has cosine 0 with everything (also itself).
    """
    xp = array_module(W)
    norms = _col_norms(W)
    inv = xp.where(norms > 0, 1.0 / xp.where(norms > 0, norms, 1.0), 0.0)
    G = W.T @ W  # (n, m) @ (m, n) -> (n, n)
    return G * inv[:, None] * inv[None, :]


def _closest_pair(W):
    """(i, j, c) with i < j the pair of columns minimizing 1 - cos^2, and c their cosine."""
    xp = array_module(W)
    n = W.shape[1]
    C = cos_matrix(W)
    S = 1.0 - C * C  # (n, n) squared sines
    S[xp.arange(n), xp.arange(n)] = xp.inf
    flat = int(S.argmin())
    i, j = divmod(flat, n)
    i, j = min(i, j), max(i, j)
    return i, j, float(C[i, j])


def rare(W):
    """Paper Eq. (5): RaRe(W) = min_{i != j} (1 - D_cos(i, j)^2) over the columns of W (m, n).

    The squared sine of the closest pair of columns: 0 when two columns are parallel or opposite.
    Returns a float; 0.0 when W has fewer than two columns (no pair to compare).
    """
    if W.shape[1] < 2:
        return 0.0
    _, _, c = _closest_pair(W)
    return 1.0 - c * c


def rare_grad(W):
    """Gradient of :func:`rare` w.r.t. W (m, n), at the minimizing pair (i, j); a subgradient at ties.

    With c = cos(w_i, w_j):  d(1 - c^2)/dw_i = -2 c (w_j / (|w_i| |w_j|) - c w_i / |w_i|^2),
    symmetrically for w_j; every other column gets 0. Returns an array shaped like W.
    """
    xp = array_module(W)
    g = xp.zeros_like(W)
    if W.shape[1] < 2:
        return g
    i, j, c = _closest_pair(W)
    wi, wj = W[:, i], W[:, j]
    ni, nj = _norm(wi), _norm(wj)
    if ni == 0.0 or nj == 0.0:
        return g
    g[:, i] = -2.0 * c * (wj / (ni * nj) - c * wi / ni**2)
    g[:, j] = -2.0 * c * (wi / (ni * nj) - c * wj / nj**2)
    return g


def rare_loss_total(weights):
    """Paper Eq. (16): L_RaRe = 1/(2c) sum_l m'_l n'_l [RaRe(W'_l) + RaRe(W'_l^T)], c = sum_l m'_l n'_l.

    Parameters
    ----------
    weights : list of (m'_l, n'_l) arrays

    Returns
    -------
    float
    """
    c = sum(W.shape[0] * W.shape[1] for W in weights)
    total = sum(W.shape[0] * W.shape[1] * (rare(W) + rare(W.T)) for W in weights)
    return total / (2.0 * c)


def euclidean_distance(W, i, j):
    """Paper Eq. (13)'s D_euc(i, j) = || w_i |w_j| / |w_i| - sign(D_cos) w_j || for columns of W (m, n).

    (It equals |w_j| sqrt(2 (1 - |D_cos|)): the distance between w_j and w_i rescaled to |w_j|.)
    Returns a float.
    """
    wi, wj = W[:, i], W[:, j]
    sign = 1.0 if float((wi * wj).sum()) > 0 else -1.0
    return _norm(wi * (_norm(wj) / _norm(wi)) - sign * wj)


def d_euc_from_cos(norm_k, cos):
    """Eq. (13)'s D_euc from the cosine: |w_k| sqrt(2 (1 - |cos|)), with k the shorter vector of the pair.

    Equal to ``euclidean_distance(W, d, k)`` (the longer vector d rescaled to |w_k|) and cheaper: the
    engine has the cosine and the norms from its Gram. norm_k, cos: floats. Returns a float.
    """
    return norm_k * math.sqrt(max(0.0, 2.0 * (1.0 - abs(cos))))


def meets_eq13(cos, d_euc, tau_cos=1e-4, tau_euc=1e-1):
    """Paper Eq. (13)'s decision: fuse a pair iff 1 - |D_cos| < tau_cos and D_euc < tau_euc.

    cos, d_euc: the pair's cosine and Euclidean distance (floats). Returns a bool. Paper values:
    tau_cos 1e-4, tau_euc 1e-1. The engine (:mod:`numpy_dlra.dlra.merge`) and
    :func:`merge_criterion` both decide with this function.
    """
    return (1.0 - abs(cos) < tau_cos) and (d_euc < tau_euc)


def merge_criterion(W, i, j, tau_cos=1e-4, tau_euc=1e-1):
    """Paper Eq. (13) on columns i, j of W (m, n): :func:`meets_eq13` of their cosine and D_euc(i, j).

    D_euc is asymmetric: D_euc(i, j) = |w_j| sqrt(2 (1 - |cos|)) rescales w_i to the length of w_j. The engine's
    reading measures at the shorter, kept vector, so pass (dropped, kept) = (longer, shorter) to decide as it does
    (``merge_criterion(W, d, k)``; with i the shorter the Euclidean test is stricter).
    Returns a bool (False if either column is zero). Paper values: tau_cos 1e-4, tau_euc 1e-1.
    """
    wi, wj = W[:, i], W[:, j]
    ni, nj = _norm(wi), _norm(wj)
    if ni == 0.0 or nj == 0.0:
        return False
    c = float((wi * wj).sum()) / (ni * nj)
    return meets_eq13(c, euclidean_distance(W, i, j), tau_cos, tau_euc)


def fusion_ratio(w_d, w_k, ratio="lstsq"):
    """Paper Eq. (8)'s r with w_d ~ r w_k.

    ratio="sum": the paper's r = sum(w_d) / sum(w_k) (exact for parallel vectors, unstable when
    sum(w_k) ~ 0); ratio="lstsq": r = <w_d, w_k> / <w_k, w_k> (exact too, and the least-squares fit
    otherwise; the default, as the engine's ``--fuse-ratio``, docs/choices.md). w_d, w_k: (m,).
    Returns a float.
    """
    if ratio == "sum":
        den = float(w_k.sum())
        if den == 0.0:
            raise ValueError("ratio='sum' is undefined: the kept vector sums to 0; use ratio='lstsq'")
        return float(w_d.sum()) / den
    if ratio == "lstsq":
        return float((w_d * w_k).sum()) / float((w_k * w_k).sum())
    raise ValueError(f"unknown ratio {ratio!r}: choose sum or lstsq")


def fuse_columns(W, Q, i, j, ratio="lstsq"):
    """Paper Eqs. (7)-(12), corrected: fuse columns i and j of W' (m' x n'), adjusting Q (n' x n).

    i and j are unordered (unlike the paper's i, dropped, and j, kept): the shorter of the two
    columns is kept (k), the other dropped (d); on a tie i is kept. With w_d = r w_k (r by
    `fusion_ratio`, Eq. 8) and s = sqrt(r^2 + 1):
        W'_new = W' without column d, column k scaled by s            (m' x (n'-1))
        Q_new  = Q without row d, row k replaced by (r q_d + q_k) / s  ((n'-1) x n)
    The kept column is column k - (d < k) of W'_new (row k - (d < k) of Q_new); k is whichever of
    i, j has the smaller norm ||W'[:, i]||, ||W'[:, j]||, i on a tie.
    For exactly parallel columns W'_new Q_new = W' Q, and the row Gram W' W'^T and ||W'||_F are
    unchanged. (The printed Eq. (11) has (q_d + r q_k) / s, which is wrong: see module docstring.)
    :func:`fuse_rows` is the same for rows, with P in place of Q and the bias b' alongside.

    Returns
    -------
    (W'_new, Q_new)
    """
    k, d = (i, j) if _norm(W[:, i]) <= _norm(W[:, j]) else (j, i)
    r = fusion_ratio(W[:, d], W[:, k], ratio)
    s = math.sqrt(r * r + 1.0)
    W_new, Q_new = W.copy(), Q.copy()
    W_new[:, k] *= s
    Q_new[k] = (r * Q[d] + Q[k]) / s
    keep = [c for c in range(W.shape[1]) if c != d]
    return W_new[:, keep], Q_new[keep]


def fuse_rows(W, b, P, i, j, ratio="lstsq", row_vectors="w"):
    """Paper Sec. 4.1, the mirror of :func:`fuse_columns`: fuse rows i and j of W' (m' x n') and their
    biases b' (m',), adjusting P (m x m').

    A row of W' carries its bias, so b' comes with it (before P; a column has none, so fuse_columns
    takes W' and Q alone). The pair is a pair of rows of W', the vectors RaRe(W'^T) of Eq. (16) acts
    on. i and j are unordered, as in fuse_columns: the shorter of the two rows is kept (k), the other
    dropped (d); on a tie i is kept. With w_d = r w_k (r by `fusion_ratio` from the rows of W') and
    s = sqrt(r^2 + 1):
        W'_new = W' without row d, row k scaled by s                  ((m'-1) x n')
        b'_new = b' without entry d, b_k <- (r b_d + b_k) / s         ((m'-1),)  least squares
        P_new  = P without column d, column k = (r p_d + p_k) / s     (m x (m'-1))
    The kept row is row k - (d < k) of W'_new (entry k - (d < k) of b'_new, column k - (d < k) of
    P_new); k is whichever of i, j has the smaller norm ||W'[i]||, ||W'[j]||, i on a tie.
    For w_d = r w_k and b_d = r b_k, P_new (W'_new x + b'_new) = P (W' x + b') for every x.
    ``row_vectors="wb"`` is the earlier reading: the pair, k, d and r are those of the augmented
    rows [w', b'] (k the shorter [w', b']), and [w_k, b_k] <- s [w_k, b_k] (the same result when
    [w_d, b_d] = r [w_k, b_k]).

    Returns
    -------
    (W'_new, b'_new, P_new)
    """
    xp = array_module(W)
    if row_vectors == "wb":
        aug = xp.concatenate([W, b[:, None]], axis=1)  # (m', n'+1)
        aug_new_T, PT_new = fuse_columns(aug.T, P.T, i, j, ratio)
        aug_new = aug_new_T.T
        return xp.ascontiguousarray(aug_new[:, :-1]), xp.ascontiguousarray(aug_new[:, -1]), xp.ascontiguousarray(PT_new.T)
    k, d = (i, j) if _norm(W[i]) <= _norm(W[j]) else (j, i)
    r = fusion_ratio(W[d], W[k], ratio)
    s = math.sqrt(r * r + 1.0)
    W_T_new, PT_new = fuse_columns(W.T, P.T, k, d, ratio)  # Eqs. (9), (11) on the rows: W'^T's columns
    b_new = b.copy()
    b_new[k] = (r * b[d] + b[k]) / s  # least squares: the merged row's bias
    keep = [c for c in range(W.shape[0]) if c != d]
    return xp.ascontiguousarray(W_T_new.T), xp.ascontiguousarray(b_new[keep]), xp.ascontiguousarray(PT_new.T)


def frobenius_normalize(W, k, g):
    """Paper Eq. (15): FN(W) = k W / ||W||_F * g, with k = ||W||_F at initialization, g trainable.

    W: (m, n) array; k, g: scalars. Returns an (m, n) array with Frobenius norm k |g|.
    """
    return W * (k * g / _norm(W.reshape(-1)))


def frobenius_normalize_backward(dY, W, k, g):
    """Gradients of Y = FN(W) (Eq. 15) given dL/dY (m, n).

    With f = ||W||_F:  dL/dW = (k g / f) (dY - (<dY, W> / f^2) W),   dL/dg = k <dY, W> / f.
    Returns (dW (m, n), dg float).
    """
    f = _norm(W.reshape(-1))
    inner = float((dY * W).sum())
    dW = (k * g / f) * (dY - (inner / f**2) * W)
    return dW, k * inner / f


def dropout_rate(n, n0, r0):
    """Paper Eq. (14): r = r0 n / n0, the dropout rate of a layer whose feature dimension shrank
    from n0 to n (r0 the initial rate). Returns a float."""
    return r0 * n / n0


# --- The fixed-rank baseline (Sainath et al. 2013): factors B C of a layer ------------------------------

def reduction_rank(m, n, p):
    """The largest integer r >= 0 with m r + r n < p m n: the rank at which factors B (m x r), C (r x n)
    keep fewer than p m n weights, i.e. r < p m n / (m + n). (The report calls p the fraction to reduce
    by; the inequality as written keeps fewer than a fraction p of A's weights, and is what this computes.)
    Returns 0 when even r = 1 does not qualify."""
    if m < 1 or n < 1:
        raise ValueError(f"need m, n >= 1, got {m}, {n}")
    r = max(0, math.floor(p * m * n / (m + n)))
    while r > 0 and m * r + r * n >= p * m * n:  # the bound is strict
        r -= 1
    return r


def truncate_svd(W, r):
    """The best rank-r approximation of W (m, n) as factors (B (m, r), C (r, n)), B C = U_r S_r V_r^T.

    Eckart-Young: ||W - B C||_2 = sigma_{r+1} (0 when r >= rank W). The singular values are split
    evenly, B = U_r S_r^(1/2), C = S_r^(1/2) V_r^T, so that neither factor carries all the scale.
    """
    xp = array_module(W)
    if not 1 <= r <= min(W.shape):
        raise ValueError(f"rank {r} is outside [1, {min(W.shape)}] for a {W.shape[0]} x {W.shape[1]} matrix")
    U, S, Vt = xp.linalg.svd(W, full_matrices=False)
    root = xp.sqrt(S[:r])
    return U[:, :r] * root[None, :], root[:, None] * Vt[:r]


def fusable_axes(m, n, first, last, classes):
    """The axes of a layer whose W' is m' x n' (here m, n) that may fuse now: the rules that give the paper's
    Table 2 shapes (docs/method.md Sec. 11). The longer axis ("cols" when n >= m, "rows" when m >= n; both when
    square); never the first layer's columns (the input pixels), never the last layer's rows (the classes);
    never below one vector, the last layer's columns never below `classes`. Returns a list, "cols" first."""
    axes = []
    if not first and n >= m and n > (classes if last else 1):
        axes.append("cols")
    if not last and m >= n and m > 1:
        axes.append("rows")
    return axes
