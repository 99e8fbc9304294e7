"""Algorithm 1 of the paper, one step: the loss, RaRe, noise, Adam, the closest pairs, the merges.

Every training step of every method is this function; the baseline and fn skip what they lack:

    1. L = L_task + lambda2 L_L2 and its gradient (Eqs. 17-18)          model.loss_and_grads
       (--task-loss sum: L_task over the batch summed, not averaged; --l2-mode decoupled: the L2
       gradient is kept out of Adam and applied after step 4 as W' <- W' - lr lambda2 dL_L2/dW')
    2. + lambda1 L_RaRe at the closest pairs, and its gradient (Eq. 16)  rare.rare_term      (dlra)
    3. gradient noise, variance eta / (1 + t)^gamma                      nn.fast              (eta > 0)
    4. the Adam update                                                    nn.optim.Adam
    5. one Gram per layer and axis of the updated W': the closest pairs  pairs.refresh       (dlra)
    6. while a closest pair meets Eq. (13): fuse it (Eqs. 7-12)          merge.merge_step    (dlra)

The pairs found in 5 serve the merge test of 6 right away and the RaRe term of the next step's 2,
so each step computes each Gram once. The trainer (:mod:`numpy_dlra.experiments.train`), the
benchmarks and the tests all call :func:`train_step`.
"""
import math
import time
import dataclasses
from dataclasses import dataclass, field

from ..errors import UserError
from ..nn.backend import array_module, synchronize
from ..nn.fast import add_gradient_noise
from .merge import merge_step
from .rare import rare_term

PHASES = ("forward+backward", "RaRe term", "gradient noise", "adam", "Grams and closest pairs", "merge test and merges")


@dataclass(frozen=True)
class StepSettings:
    """What one step reads besides the model and the pairs: the loss's L2 term and the gradient noise. Field
    names are those of :class:`numpy_dlra.experiments.config.TrainConfig` (and of its flags), so
    :meth:`from_config` takes them by keyword; the RaRe weight and Eq. (13)'s settings are the pairs' rules."""

    lambda2: float = 0.0  # weight of L_L2, Eq. (18)
    l2_mode: str = "loss"  # "loss": L2 in the loss, through Adam (as printed); "decoupled": W' shrinks after Adam
    task_loss: str = "mean"  # L_task over the batch: "mean" or "sum"
    grad_noise_eta: float = 0.0  # gradient-noise variance eta / (1 + t)^gamma; 0 = off
    grad_noise_gamma: float = 0.55
    grad_noise_stream: str = "raw"  # the CPU's draw: "raw" (the generator's 64-bit words) or "uniform" (older runs)

    @classmethod
    def from_config(cls, cfg):
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


@dataclass
class StepResult:
    loss: float  # L = L_task + lambda1 L_RaRe + lambda2 L_L2, before the update
    task: float  # L_task
    rare: float = 0.0  # L_RaRe (unweighted)
    merges: list = field(default_factory=list)  # one record per fusion made after the update


def train_step(model, params, opt, opt_state, x, y, cfg, rngs, pairs=None, probe=None, clock=None):
    """One step of Algorithm 1 on the batch x (B, n_in), y (B,); params and opt_state change in place.

    model : MLP, CNN or FactorizedMLP (any :class:`numpy_dlra.models.base.Classifier`)
    opt, opt_state : :class:`numpy_dlra.nn.optim.Adam` and its state (``t`` counts the updates)
    cfg   : the step's settings, a :class:`StepSettings` (or anything with its fields, such as a TrainConfig)
    rngs  : generators "dropout" and "noise"
    pairs : :class:`.pairs.ClosestPairs` for DLRA (holds lambda1 and the Eq. 13 thresholds), else None
    probe : (P, n_in) fixed inputs whose logits each merge record compares, or None
    clock : a dict phase -> seconds (keys :data:`PHASES`) to accumulate the time of each phase, or None
    Raises UserError when the loss is not finite.
    """
    tick = _Clock(clock, array_module(x))
    coupled = cfg.l2_mode == "loss"  # "decoupled": the L2 term shrinks W' after the update instead (step 4)
    if cfg.task_loss == "mean":
        loss, task, grads = model.loss_and_grads(params, x, y, training=True, rng=rngs["dropout"],
                                                 lambda2=cfg.lambda2 if coupled else 0.0)
    else:  # "sum": L_task summed over the batch, B times the mean, and B times its gradient
        loss, task, grads = model.loss_and_grads(params, x, y, training=True, rng=rngs["dropout"], lambda2=0.0)
        B = len(y)
        for g in grads.values():
            g *= g.dtype.type(B)
        loss = task = task * B
        if coupled and cfg.lambda2:
            loss += model.add_l2(params, grads, cfg.lambda2)
    decay = None
    if not coupled and cfg.lambda2:  # AdamW-style: lambda2 dL_L2/dW' at the weights before the update
        decay = {k: array_module(p).zeros_like(p) for k, p in params.items()}
        loss += model.add_l2(params, decay, cfg.lambda2)
    tick("forward+backward")
    rare = 0.0
    if pairs is not None and pairs.rules.lambda1:
        rare = rare_term(pairs, params, grads)  # adds lambda1 dL_RaRe/dW' into grads
        loss += pairs.rules.lambda1 * rare
    tick("RaRe term")
    if not math.isfinite(loss):
        raise UserError(f"the loss became {loss} at step {opt_state['t'] + 1} ({_culprit(params, x)}); "
                        "lower --lr or --grad-noise-eta, or use --dtype float64")
    if cfg.grad_noise_eta > 0:
        add_gradient_noise(grads, opt_state["t"], cfg.grad_noise_eta, rngs["noise"], cfg.grad_noise_gamma,
                           cfg.grad_noise_stream)
    tick("gradient noise")
    opt.step(params, grads, opt_state)
    if decay is not None:
        for k, d in decay.items():
            params[k] -= d * d.dtype.type(opt.lr)  # decoupled weight decay: W' <- W' - lr lambda2 dL_L2/dW'
    tick("adam")
    merges = []
    if pairs is not None:
        step = opt_state["t"]
        pairs.refresh(params, step)  # the one Gram per layer and axis of this step
        tick("Grams and closest pairs")
        merges = merge_step(pairs, params, opt_state, step, probe)
        tick("merge test and merges")
    return StepResult(loss, task, rare, merges)


def _culprit(params, x):
    """Where a non-finite loss comes from: the batch, the first parameter array that is not finite, or
    the forward pass (finite parameters whose products overflow)."""
    xp = array_module(x)
    if not bool(xp.isfinite(x).all()):
        return "the input batch holds NaN or Inf"
    for name, p in params.items():
        if not bool(xp.isfinite(p).all()):
            layer = "".join(ch for ch in name if ch.isdigit())
            return f"parameter {name} of layer {layer} holds NaN or Inf" if layer else f"parameter {name} holds NaN or Inf"
    return "the parameters are finite: the forward pass overflowed"


class _Clock:
    """tick(phase) adds the time since the last tick to totals[phase] (a no-op without totals). On a GPU it
    waits for the device first, so that a phase is charged with its own kernels, not only their launches."""

    def __init__(self, totals, xp):
        self.totals, self.xp = totals, xp
        if totals is not None:
            synchronize(xp)
        self.t = time.perf_counter()

    def __call__(self, phase):
        if self.totals is not None:
            synchronize(self.xp)
            now = time.perf_counter()
            self.totals[phase] = self.totals.get(phase, 0.0) + now - self.t
            self.t = now
