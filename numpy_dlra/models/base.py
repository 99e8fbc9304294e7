"""What every model shares: the training loss and gradients (Eq. 18 without RaRe), and prediction.

A model defines
    forward(params, x, *, training, rng) -> (logits (B, C), cache)
    backward(dlogits, cache, *, input_grad=True) -> (dx or None, grads keyed like params)
and ``l2_kinds``, the first letters of the weight arrays that Eq. (17) sums over. The RaRe term
(Eq. 16) and the merges belong to the method: :mod:`numpy_dlra.dlra.algorithm1`.
"""
from ..nn.backend import array_module
from ..nn.losses import add_l2_, softmax_cross_entropy, softmax_cross_entropy_backward


class Classifier:
    l2_kinds = "W"  # W (and W'); "WBC" adds fixed-rank factors; "KWBC" adds convolution kernels
    predict_batch = 2000  # rows per forward pass in predict

    def loss_and_grads(self, params, x, y, *, training, rng, lambda2=0.0):
        """L = L_task + lambda2 L_L2 (Eqs. 17-18 without the RaRe term) and dL/dparams.

        x: (B, ...) inputs, y: (B,) labels. Returns (L, L_task, grads keyed like params).
        """
        logits, caches = self.forward(params, x, training=training, rng=rng)
        task, ce_cache = softmax_cross_entropy(logits, y)
        _, grads = self.backward(softmax_cross_entropy_backward(ce_cache), caches, input_grad=False)
        loss = task
        if lambda2:
            loss += self.add_l2(params, grads, lambda2)
        return loss, task, grads

    def add_l2(self, params, grads, lambda2):
        """lambda2 L_L2 (Eq. 17) over the weight arrays named by ``l2_kinds``; adds its gradient into `grads`."""
        return add_l2_(params, grads, lambda2, self.l2_kinds)

    def flops_paper(self):
        """FLOPs per sample as the paper counts them; for a dense network, the usual 2 per weight."""
        return self.flops_per_sample()

    def predict(self, params, x, batch_size=None):
        """Class predictions in evaluation mode (no dropout), `batch_size` rows at a time. x: (N, ...); (N,) int."""
        bs = batch_size or self.predict_batch
        xp = array_module(x)
        out = [self.forward(params, x[i:i + bs])[0].argmax(axis=1) for i in range(0, len(x), bs)]
        return xp.concatenate(out)
