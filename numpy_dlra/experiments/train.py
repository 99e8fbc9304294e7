"""One training run = one function of a config that writes one run folder (:mod:`.run_folder`).

``metrics.jsonl`` gets one line per epoch: epoch, step, train_loss (L, training mode, mean over
the epoch's batches), train_task_loss, train_rare_loss (L_RaRe, dlra), val_acc and test_acc
(percent, eval mode), params (trainable), flops_per_sample (the models' flops_per_sample),
flops_paper (the paper's count, 2 sum feat_{l-1} feat_l for DLRA), compression (%, against the same
net at initialization), layers (per layer m', n' and the reduced feature dim), merges (this epoch),
seconds (the epoch, evaluation included) and train_seconds (the training pass alone); for dlra,
axes (per layer and axis: the closest pair's 1 - |cos| at its smallest and at the epoch's end, merges,
||W'||_F, g and c; :mod:`.diagnostics`).
With ``device = "cuda"`` the data and parameters go to the GPU once; see :mod:`numpy_dlra.nn.backend`
for what changes (the dropout and noise generators).

Methods: ``baseline`` (the dense MLP, or the CNN), ``fn`` (every layer as FN(W'), P = Q = I) and
``dlra`` (fn + RaRe + L2 + a merge test after every update). All three start from the same dense
weights for a given seed, and every step is :func:`numpy_dlra.dlra.algorithm1.train_step`.
Randomness comes only from four generators spawned from ``SeedSequence(cfg.seed)``: init,
shuffle, dropout, noise. Same seed, same machine, same thread count: bitwise identical runs.
"""
import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from .. import faults
from ..data.datasets import load_dataset
from ..data.own import file_sha256
from ..dlra.algorithm1 import StepSettings, train_step
from ..dlra.network import FactorizedMLP, compression
from ..dlra.pairs import ClosestPairs, FusionRules
from ..errors import UserError
from ..nn.backend import device_rng, module_for, synchronize
from ..nn.optim import Adam
from .build import build_model, initial_params, params_at_init
from .config import TrainConfig, is_own
from .diagnostics import AxisTrace
from .progress import Progress
from .resources import check_fits
from .run_folder import RunFolder, RunState

RNG_STREAMS = ("init", "shuffle", "dropout", "noise")


def make_rngs(seed):
    """Independent generators for each source of randomness, spawned from one seed."""
    children = np.random.SeedSequence(seed).spawn(len(RNG_STREAMS))
    return {name: np.random.default_rng(c) for name, c in zip(RNG_STREAMS, children)}


def accuracy(model, params, x, y):
    """Percent of correct eval-mode predictions. x: (N, n_in), y: (N,)."""
    return float((model.predict(params, x) == y).mean()) * 100.0


def train(cfg: TrainConfig, out, *, resume=False, progress=None, log=print, dataset=None):
    """Train the model of `cfg` (MLP, factorized MLP or CNN), writing the run folder `out`; returns the summary.

    `dataset` (a :class:`numpy_dlra.data.datasets.Dataset`) overrides ``cfg.data``: your own arrays
    (:func:`numpy_dlra.data.own.from_arrays`, with ``cfg.data = "arrays"``), or a built-in set (tests).
    The configuration is fitted to the data (:meth:`TrainConfig.fit`: your own data's widths, input shape,
    scaling and sha256). Raises UserError (before writing anything) for an unusable `out` or bad data.
    """
    folder = RunFolder(out)
    if not resume:  # a new run: check everything before the folder is made
        folder.check_new()
        cfg, data = _data(cfg, dataset, log, new=True)
        folder.create()
        with folder.lock():  # a second process on this folder refuses (UserError) instead of interleaving files
            folder.check_new()  # again under the lock: another process may have finished a run here meanwhile
            return _train(cfg, folder, None, data, progress, log)
    if not folder.path.is_dir():
        folder.load(cfg)  # raises "no checkpoint here"
    with folder.lock():  # the state is read under the lock, so no other process can move it on meanwhile
        state = None
        cfg, data = _data(cfg, dataset, log)  # your own data's sha256 is compared with the run's (RunFolder.load)
        if (folder.path / "config.json").is_file() and not folder.has_checkpoint() and folder.not_started():
            log(f"{out}: no checkpoint yet (the run stopped before its first epoch ended): starting it over")
        else:
            state = folder.load(cfg)
            cfg = dataclasses.replace(state.config, epochs=cfg.epochs)  # the run's own settings, the new epochs
            if folder.warning:
                log(f"warning: {folder.warning}")
            if state.epoch > cfg.epochs:
                raise UserError(f"--epochs {cfg.epochs}: the run in {out} has trained {state.epoch} epochs already; "
                                f"give --epochs {state.epoch} or more")
        return _train(cfg, folder, state, data, progress, log)


def run_data(cfg, log=print):
    """The data of `cfg` (a built-in set, or your own --data FILE.npz), unconverted. For a configuration fitted to
    your own data (a run's), the file must still be the one the run read: UserError with both sha256 otherwise."""
    data = load_dataset(cfg.data, cfg.val_fraction, cfg.split_seed, log=log, dataset=cfg.dataset)
    if cfg.data_sha256 and data.sha256 != cfg.data_sha256:
        raise UserError(f"--data {cfg.data}: not the data the run read (sha256 {cfg.data_sha256} then, "
                        f"{data.sha256} now)")
    return data


def _data(cfg, dataset, log, new=False):
    """(the configuration fitted to its data, the data in the run's dtype), after checking that the run fits in
    memory and the batch in the data. `new`: a run not yet started (the validation split is checked then)."""
    xp = module_for(cfg.device)  # UserError before anything is written when CuPy or the GPU is missing
    data = dataset or run_data(cfg, log)
    cfg = cfg.fit(data, check_split=new)
    check_fits(cfg, len(data.y_train) + len(data.y_val) + len(data.y_test), int(np.prod(data.x_train.shape[1:])))
    data = data.to(xp, np.dtype(cfg.dtype))  # the one copy to the device
    if cfg.batch_size > len(data.y_train):
        raise UserError(f"--batch-size {cfg.batch_size}: larger than the {len(data.y_train)} training images of "
                        f"{data.name}; choose at most {len(data.y_train)}")
    return cfg, data


@dataclass
class Session:
    """Everything a run carries from one epoch to the next (what a checkpoint saves, and what it rebuilds)."""

    cfg: TrainConfig
    model: object
    params: dict
    opt: Adam
    opt_state: dict  # {"t", "m", "v"}
    rngs: dict  # RNG_STREAMS -> generator
    epoch: int  # epochs done
    step: int  # steps done
    history: list  # the metrics.jsonl records so far
    params0: int  # parameters at initialization (compression's reference)
    pairs: ClosestPairs = None  # dlra: the closest pairs (RaRe's and Eq. 13's)
    probe: object = None  # dlra: the probe batch of merges.jsonl
    trace: AxisTrace = None  # dlra: the per-axis diagnostics

    def checkpoint(self):
        """The RunState that folder.save writes."""
        factorized = isinstance(self.model, FactorizedMLP)
        return RunState(config=self.cfg, params=self.params, opt_state=self.opt_state,
                        rng_states={k: g.bit_generator.state for k, g in self.rngs.items()
                                    if isinstance(g, np.random.Generator)},
                        epoch=self.epoch, step=self.step, history=self.history,
                        factors=self.model.factors if factorized else None,
                        fn_k=self.model.fn_k if factorized else None,
                        pairs=self.pairs.state() if self.pairs else None)


@dataclass
class EpochTally:
    """What one epoch's steps add up to."""

    loss: float = 0.0  # sum over the steps of L
    task: float = 0.0  # of L_task
    rare: float = 0.0  # of L_RaRe
    merges: list = dataclasses.field(default_factory=list)  # merge records
    steps: int = 0


def _train(cfg, folder, state, data, progress, log):
    """The run itself, under the folder's lock: start or resume, then one epoch of train_step at a time,
    each recorded and checkpointed."""
    s = _start(cfg, state, data)
    if state:
        log(f"resuming {folder.path} after epoch {s.epoch} (step {s.step})")
    folder.start(cfg, s.history, s.step, merges=s.pairs is not None)
    for epoch in range(s.epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        tally = _epoch(s, data, epoch, progress)
        rec = _record(s, data, epoch, tally, t0)
        s.history.append(rec)
        s.epoch = epoch
        if s.pairs:
            folder.append(folder.merges, tally.merges)
        folder.save(s.checkpoint())
        folder.append(folder.metrics, [rec])
        shapes = " ".join(f"{d['m']}x{d['n']}" for d in rec["layers"])
        log(f"epoch {epoch:>3}  step {s.step:>6}  loss {rec['train_loss']:.4f}  val {rec['val_acc']:.2f} %  "
            f"test {rec['test_acc']:.2f} %  ({rec['seconds']:.1f} s)"
            + (f"  shapes {shapes}  comp {rec['compression']:.2f} %" if s.pairs else ""))
    summary = _summary(s, data)
    folder.write_json("summary.json", summary)
    return summary


def _start(cfg, state, data):
    """A fresh run (random or --init-from parameters, zero moments) or the checkpointed `state` resumed."""
    opt = Adam(cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
    rngs = make_rngs(cfg.seed)
    xp = module_for(cfg.device)
    model, params = build_model(cfg, rng=rngs["init"], state=state, xp=xp)
    if state:
        opt_state = {"t": state.opt_state["t"]} | {k: {n: xp.asarray(a) for n, a in state.opt_state[k].items()}
                                                  for k in ("m", "v")}
        for name, st in state.rng_states.items():
            rngs[name].bit_generator.state = st
        epoch, step, history = state.epoch, state.step, state.history
    else:
        if cfg.init_from:
            params = initial_params(cfg.init_from, params)
        opt_state = opt.init(params)
        epoch, step, history = 0, 0, []
    s = Session(cfg, model, params, opt, opt_state, rngs, epoch, step, history, params_at_init(cfg, model))
    if cfg.method == "dlra":
        s.pairs = ClosestPairs(model, FusionRules.from_config(cfg))
        s.pairs.restore(params, state.pairs if state else None)
        s.trace = AxisTrace(s.pairs)
        s.probe = data.x_val[:cfg.probe_size] if cfg.probe_size else None
    return s


def _epoch(s, data, epoch, progress):
    """One epoch: a fresh shuffle, then Algorithm 1's step on every batch (:func:`train_step`)."""
    cfg, xp = s.cfg, module_for(s.cfg.device)
    x, y = data.x_train, data.y_train
    n, bs = len(x), cfg.batch_size
    n_batches = math.ceil(n / bs)
    perm = xp.asarray(s.rngs["shuffle"].permutation(n))  # drawn on the host, as on the CPU; one copy an epoch
    if xp is not np:  # CuPy's generators cannot be saved: re-seeded every epoch (nn.backend)
        s.rngs |= {k: device_rng(xp, cfg.seed, RNG_STREAMS.index(k), epoch) for k in ("dropout", "noise")}
    tally, settings = EpochTally(), StepSettings.from_config(cfg)
    with Progress(n_batches, f"epoch {epoch}/{cfg.epochs}", enabled=progress) as bar:
        for i in range(n_batches):
            idx = perm[i * bs:(i + 1) * bs]
            r = train_step(s.model, s.params, s.opt, s.opt_state, x[idx], y[idx], settings, s.rngs, s.pairs, s.probe)
            s.step += 1
            faults.reached("step")
            if r.merges:
                faults.reached("merge")
            tally.merges += r.merges
            if s.trace:
                s.trace.step()
            tally.loss += r.loss
            tally.task += r.task
            tally.rare += r.rare
            tally.steps += 1
            bar.update(1, loss=r.loss)
    synchronize(xp)
    return tally


def _record(s, data, epoch, tally, t0):
    """The epoch's metrics.jsonl record (the keys in the module doc)."""
    t_train = time.perf_counter() - t0
    model, params = s.model, s.params
    n_params = model.param_count()
    rec = {
        "epoch": epoch,
        "step": s.step,
        "train_loss": tally.loss / tally.steps,
        "train_task_loss": tally.task / tally.steps,
        "train_rare_loss": tally.rare / tally.steps,
        "val_acc": accuracy(model, params, data.x_val, data.y_val),
        "test_acc": accuracy(model, params, data.x_test, data.y_test),
        "params": n_params,
        "flops_per_sample": model.flops_per_sample(),
        "flops_paper": model.flops_paper(),
        "compression": compression(n_params, s.params0),
        "layers": model.layer_stats(),
        "merges": len(tally.merges),
        "seconds": time.perf_counter() - t0,
        "train_seconds": t_train,  # the training pass alone (steps, merges), comparable across frameworks
    }
    if s.trace:
        rec["axes"] = s.trace.epoch_record(params, tally.merges)
    return rec


def _summary(s, data):
    """summary.json: the data (what, from where, its scaling), the last record (whose ``merges`` are the last
    epoch's), ``merges_total`` (the whole run's), the epoch of the best validation accuracy, the config."""
    history = s.history
    best = max(history, key=lambda r: r["val_acc"]) if history else None
    return {
        "dataset": data.name,
        "data": data.describe(),
        "n_train": int(len(data.y_train)), "n_val": int(len(data.y_val)), "n_test": int(len(data.y_test)),
        "final": history[-1] if history else None,
        "merges_total": sum(r["merges"] for r in history),  # final["merges"] counts the last epoch's only
        "best_val_epoch": best["epoch"] if best else None,
        "test_acc_at_best_val": best["test_acc"] if best else None,
        "total_seconds": sum(r["seconds"] for r in history),
        "config": s.cfg.to_dict(),
    }


def train_or_reuse(cfg, out, log=print):
    """`train(cfg, out)` for the commands that chain runs: a run already finished with this config is
    reused (its summary returned), an unfinished one resumed, a missing one started."""
    folder = RunFolder(out)
    summary = folder.summary()
    if summary and summary["final"] and summary["final"]["epoch"] == cfg.epochs and \
            same_run(TrainConfig.from_dict(summary["config"]), cfg):
        log(f"{out}: done before, reused")
        return summary
    return train(cfg, out, resume=folder.has_checkpoint(), progress=False, log=log)


def same_run(saved, cfg):
    """Whether the finished run's `saved` configuration is `cfg`'s run. For your own data not yet read (``cfg``
    not fitted), the file's sha256 now stands in for reading it, and the rest of the fit is the run's."""
    if is_own(cfg.data) and not cfg.data_sha256:
        if cfg.data == "arrays" or saved.data != cfg.data:
            return False
        fitted = {k: getattr(saved, k) for k in ("input_shape", "input_scaling")}
        cfg = dataclasses.replace(cfg, sizes=cfg.sizes or saved.sizes, data_sha256=file_sha256(cfg.data), **fitted)
    return saved.run_key() == cfg.run_key()
