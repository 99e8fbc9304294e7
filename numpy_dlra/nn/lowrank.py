"""The fixed-rank layer (Sainath et al. 2013): y = B (C x) + b.

A dense m x n weight A is replaced by two trainable factors B (m x r) and C (r x n); the layer has
m r + r n + m parameters instead of m n + m, fewer when r < m n / (m + n)
(:func:`numpy_dlra.dlra.equations.reduction_rank`). Same op contract as :mod:`numpy_dlra.nn.layers`.
"""


class LowRankLinear:
    """y = x C^T B^T + b, batched. params: B (m, r), C (r, n), b (m,); x: (B, n); y: (B, m).

    With ``input_grad=False`` backward returns dx = None and skips that GEMM.
    """

    def forward(self, params, x, *, training=False, rng=None):
        B, C, b = params["B"], params["C"], params["b"]
        h = x @ C.T  # (batch, n) @ (n, r) -> (batch, r)
        y = h @ B.T  # (batch, r) @ (r, m) -> (batch, m)
        y += b
        return y, (x, h, B, C)

    def backward(self, dy, cache, *, input_grad=True):
        x, h, B, C = cache
        gB = dy.T @ h  # (m, batch) @ (batch, r) -> (m, r)
        dh = dy @ B  # (batch, m) @ (m, r) -> (batch, r)
        gC = dh.T @ x  # (r, batch) @ (batch, n) -> (r, n)
        dx = dh @ C if input_grad else None  # (batch, r) @ (r, n) -> (batch, n)
        return dx, {"B": gB, "C": gC, "b": dy.sum(axis=0)}
