"""The RaRe term of the loss (paper Eqs. 5, 6, 16) and its gradient, at the closest pairs.

RaRe(W) = 1 - cos^2(w_i, w_j) for the closest pair (i, j) of W's columns (Eqs. 5-6); Eq. (16) sums it
over every layer and both axes (W' and W'^T), weighted by each layer's size. Only the closest pair
enters, so the gradient touches two vectors per axis: O(m + n) work on top of the Grams that
:mod:`.pairs` computes once per step anyway. The reference definitions are
:func:`numpy_dlra.dlra.equations.rare`, ``rare_grad`` and ``rare_loss_total``; the tests check
that this agrees with them.
"""


def rare_term(pairs, params, grads):
    """Return L_RaRe (Eq. 16) and add lambda1 dL_RaRe/dW' into `grads` (in place).

    L_RaRe = 1/(2c) sum_l m'n' [RaRe(W'_l) + RaRe(W'_l^T)], c = sum_l m'n'; RaRe at the closest pair
    (i, j) with cosine c_ij has gradient -2 c_ij (w_j/(|w_i||w_j|) - c_ij w_i/|w_i|^2) in w_i (and
    symmetrically), 0 elsewhere. With rare_axes="fusable" only the fusable axes' terms are summed.
    `pairs` is the :class:`.pairs.ClosestPairs` of the current W' (its last refresh); lambda1 is
    ``pairs.rules.lambda1``. Vectors of a pair that are zero contribute no gradient.
    """
    model, lambda1 = pairs.model, pairs.rules.lambda1
    L = model.n_layers
    sizes = {l: model.layers[l - 1].n_weights() for l in range(1, L + 1)}  # m'n', the entries of W'
    c_tot = sum(sizes.values())
    total = 0.0
    for l in range(1, L + 1):
        weight = sizes[l] / (2.0 * c_tot)
        for axis in pairs.rare_axes(l):
            if (l, axis) not in pairs.pairs:  # fewer than two vectors: RaRe is 0
                continue
            i, j, cos, ni, nj = pairs.pairs[(l, axis)]
            total += weight * (1.0 - cos * cos)  # Eq. (5): RaRe = 1 - cos^2 at the closest pair
            if ni == 0.0 or nj == 0.0:
                continue
            layer = model.layers[l - 1]
            V = layer.vectors(params, axis)  # (dim, n): the axis' vectors as columns, a view
            gW = grads[layer.keys["W"]]
            gV = layer.view(gW, axis)  # a view: updates grads
            a = lambda1 * weight * -2.0 * cos
            wi, wj = V[:, i].copy(), V[:, j].copy()
            if max(ni, nj) / min(ni, nj) < LARGE and min(ni, nj) > 1 / LARGE:
                gV[:, i] += (a / (ni * nj)) * wj - (a * cos / ni**2) * wi  # -2 cos (w_j/(|w_i||w_j|) - cos w_i/|w_i|^2)
                gV[:, j] += (a / (ni * nj)) * wi - (a * cos / nj**2) * wj
            elif min(ni, nj) > TINY:  # a vector near zero: the same, through unit vectors (1/|w|^2 would overflow)
                ui, uj = wi / wi.dtype.type(ni), wj / wj.dtype.type(nj)
                gV[:, i] += (a / ni) * (uj - cos * ui)
                gV[:, j] += (a / nj) * (ui - cos * uj)
    return total


LARGE = 1e12  # norms further apart than this, or below 1 / LARGE, take the unit-vector form of the gradient
TINY = 1e-30  # a vector shorter than this gets no RaRe gradient: its direction is rounding (its gradient would be ~1/|w|)
