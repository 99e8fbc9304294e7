"""The layers of the MLP, each a stateless op with the contract

    forward(params, x, *, training, rng) -> (y, cache)
    backward(dy, cache, *, input_grad=True) -> (dx, grads)

`params` is a dict of arrays (empty for ops without parameters); `grads` has the same keys.
`backward` reads only its cache, never recomputes the forward pass and never writes into `dy`.
The ops hold hyperparameters only (e.g. the dropout rate), never arrays, so one instance can be
shared and a forward/backward pair is a pure function of its inputs. With ``input_grad=False`` an
op with parameters returns dx = None and skips that product (the first layer's input gradient is
never needed in training); ops without parameters ignore it.
"""
from .backend import array_module


class Linear:
    """Paper Eq. (1): y_hat = W x + b, batched as Y = X W^T + b.

    params: W (m, n) -- rows are output units, columns are input coordinates, as in the paper --
    and b (m,). x: (B, n). y: (B, m).
    With ``input_grad=False`` backward returns dx = None and skips its GEMM: the first layer's
    input gradient is never needed (for 784-500 at batch 128 that is ~10 % of a step's FLOPs).
    """

    def forward(self, params, x, *, training=False, rng=None):
        W, b = params["W"], params["b"]
        y = x @ W.T  # (B, n) @ (n, m) -> (B, m)
        y += b
        return y, (x, W)

    def backward(self, dy, cache, *, input_grad=True):
        x, W = cache
        gW = dy.T @ x  # (m, B) @ (B, n) -> (m, n)
        gb = dy.sum(axis=0)  # (m,)
        dx = dy @ W if input_grad else None  # (B, m) @ (m, n) -> (B, n)
        return dx, {"W": gW, "b": gb}


class ReLU:
    """Paper Eq. (2) with f = max(0, .): y = max(x, 0). x, y: (B, m)."""

    def forward(self, params, x, *, training=False, rng=None):
        xp = array_module(x)
        y = xp.maximum(x, 0)
        return y, y

    def backward(self, dy, cache, *, input_grad=True):
        y = cache
        return dy * (y > 0), {}


class Dropout:
    """Inverted dropout: in training y = x * mask / (1 - rate), mask_i ~ Bernoulli(1 - rate).

    In evaluation (training=False) y = x. The mask (already divided by 1 - rate) is the cache, so
    backward applies exactly the mask that forward drew: dx = dy * mask. `rng` must be a
    numpy (or cupy) Generator; it is the only source of randomness. x, y, mask: (B, m).
    """

    def __init__(self, rate: float):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def forward(self, params, x, *, training=False, rng=None):
        if not training or self.rate == 0.0:
            return x, None
        if rng is None:
            raise ValueError("Dropout.forward(training=True) needs an explicit rng")
        u = rng.random(x.shape, dtype=x.dtype)  # (B, m) uniform [0, 1)
        mask = (u >= self.rate) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * mask, mask

    def backward(self, dy, cache, *, input_grad=True):
        mask = cache
        if mask is None:
            return dy.copy(), {}
        return dy * mask, {}
