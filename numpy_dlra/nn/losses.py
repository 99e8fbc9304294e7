"""Loss terms: the task loss (softmax cross-entropy) and the L2 term of paper Eq. (17)."""
from .backend import array_module
from .fast import scaled_add_


def softmax_cross_entropy(logits, labels):
    """L_task = mean_b [ logsumexp(z_b) - z_b[y_b] ], computed stably (shifted by max_b z_b).

    Parameters
    ----------
    logits : (B, C) float
    labels : (B,) int in [0, C)

    Returns
    -------
    loss : float
    cache : (probs (B, C), labels (B,)) for :func:`softmax_cross_entropy_backward`
    """
    xp = array_module(logits)
    B = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)  # (B, C), max entry 0
    e = xp.exp(z)
    s = e.sum(axis=1, keepdims=True)  # (B, 1) >= 1, so log is safe
    logp = z - xp.log(s)  # (B, C) log-softmax
    loss = -logp[xp.arange(B), labels].mean()
    return float(loss), (e / s, labels)


def softmax_cross_entropy_backward(cache, dloss=1.0):
    """dL_task/dlogits = (softmax(z) - onehot(y)) / B * dloss. Returns (B, C)."""
    probs, labels = cache
    xp = array_module(probs)
    B = probs.shape[0]
    d = probs.copy()
    d[xp.arange(B), labels] -= 1.0
    d *= probs.dtype.type(dloss / B)
    return d


def l2_penalty(weights):
    """Paper Eq. (17): L_L2 = (1/N) sum_l ||W_l||_F^2 over the N weight matrices (biases excluded).

    Parameters
    ----------
    weights : list of (m_l, n_l) arrays

    Returns
    -------
    float
    """
    return float(sum(float(array_module(W).dot(W.reshape(-1), W.reshape(-1))) for W in weights) / len(weights))


def l2_penalty_grad(W, n_weights):
    """dL_L2/dW_l = 2 W_l / N for one (m, n) matrix W_l of the N in the sum; returns (m, n).
    (The models add lambda2 times this into their gradients in place, with fast.scaled_add_.)"""
    return W * W.dtype.type(2.0 / n_weights)


def add_l2_(params, grads, lambda2, kinds="W"):
    """lambda2 * Eq. (17) over the weight arrays of `params` (the names that start with a letter in
    `kinds`: "W" for W and W'; "WBC" adds fixed-rank factors; "KWBC" adds conv kernels). Returns
    lambda2 L_L2 and adds lambda2 dL_L2/dW = lambda2 2 W / N into `grads` in place (no temporaries)."""
    names = [k for k in params if k[0] in kinds]
    for k in names:
        scaled_add_(grads[k], lambda2 * 2.0 / len(names), params[k])
    return lambda2 * l2_penalty([params[k] for k in names])
