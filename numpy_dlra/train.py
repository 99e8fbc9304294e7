"""One training run = one function of a config that writes one folder.

``train(cfg, out)`` writes into `out`:
- ``config.json``   the TrainConfig;
- ``metrics.jsonl`` one line per epoch: epoch, step, train_loss (L, training mode, mean over the
                    epoch's batches), train_task_loss, train_rare_loss (L_RaRe, dlra), val_acc and
                    test_acc (percent, eval mode), params (trainable), flops_per_sample (see the
                    models' flops_per_sample), compression (%, against the same net at initialization),
                    layers (per layer m', n' and the reduced feature dim), merges (this epoch), seconds;
- ``merges.jsonl``  (dlra) one line per fusion: step, layer, axis, kept and dropped index, r, s,
                    cos, d_euc, the layer's shape after it, and probe_change (the largest change of a
                    logit on a fixed batch of validation images);
- ``checkpoint.npz`` after every epoch, atomically: parameters, Adam state, P and Q, every
                    generator's state and the metrics so far, so that ``resume=True`` continues
                    bit-for-bit;
- ``summary.json``  at the end.

Methods: ``baseline`` (the dense MLP), ``fn`` (every layer as FN(W'), P = Q = I) and ``dlra``
(fn + RaRe + L2 + a merge test after every update; :mod:`numpy_dlra.fusion`). All three start
from the same dense weights for a given seed.
Randomness comes only from four generators spawned from ``SeedSequence(cfg.seed)``: init,
shuffle, dropout, noise. Same seed, same machine, same thread count: bitwise identical runs.
"""
import json
import math
import time
from pathlib import Path

import numpy as np

from . import checkpoint
from .cnn import CNN
from .config import TrainConfig
from .datasets import DATASETS, load_dataset
from .errors import UserError
from .factorized import LayerFactors
from .factorized_mlp import FactorizedMLP, compression
from .fetch import atomic_write_bytes
from .fusion import FusionRules, RankReducer
from .mlp import MLP, init_params
from .optim import Adam, add_gradient_noise
from .progress import Progress

RNG_STREAMS = ("init", "shuffle", "dropout", "noise")


def make_rngs(seed):
    """Independent generators for each source of randomness, spawned from one seed."""
    children = np.random.SeedSequence(seed).spawn(len(RNG_STREAMS))
    return {name: np.random.default_rng(c) for name, c in zip(RNG_STREAMS, children)}


def accuracy(model, params, x, y):
    """Percent of correct eval-mode predictions. x: (N, 784), y: (N,)."""
    return float((model.predict(params, x) == y).mean() * 100.0)


def _write_json(path, obj):
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def _state_arrays(params, opt_state):
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"adam_m/{k}": v for k, v in opt_state["m"].items()})
    arrays.update({f"adam_v/{k}": v for k, v in opt_state["v"].items()})
    return arrays


def _build_model(cfg, dtype, rng=None, params=None, factors=None, fn_k=None):
    """(model, params) of the config: fresh from `rng`, or around saved `params` (and P, Q) on resume."""
    L = len(cfg.sizes) - 1
    if cfg.model == "cnn":
        (h, w, c), classes = DATASETS[cfg.dataset]
        model = CNN((h, w, c), classes, rank=cfg.rank)
        return model, (params if params is not None else model.init_params(rng, dtype))
    if cfg.method == "baseline":
        ranks = dict(cfg.layer_ranks) | ({L: cfg.rank} if cfg.rank else {})
        if params is None:
            params = init_params(cfg.sizes, rng, dtype, cfg.init, ranks=ranks)
        return MLP(cfg.sizes, cfg.dropout, tuple(sorted(ranks.items()))), params
    if factors is None:  # fn, dlra: the dense initialization, factorized with P = Q = I
        return FactorizedMLP.from_dense(init_params(cfg.sizes, rng, dtype, cfg.init), cfg.sizes, cfg.dropout, fn=True)
    return FactorizedMLP(cfg.sizes, factors, fn_k, cfg.dropout, dtype=dtype), params


def _initial_params(path, fresh):
    """The parameters in the .npz `path` (``--init-from``), checked against the model's own keys and shapes."""
    try:
        with np.load(path, allow_pickle=False) as z:
            given = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"--init-from {path}: cannot read it ({exc})") from None
    want = {k: v.shape for k, v in fresh.items()}
    got = {k: v.shape for k, v in given.items()}
    if want != got:
        raise UserError(f"--init-from {path}: its arrays {got} do not fit the model's {want}")
    return {k: given[k].astype(fresh[k].dtype) for k in fresh}


def _merge_lines(path, upto_step):
    """The lines of merges.jsonl up to and including `upto_step` (a resumed run drops the rest)."""
    if not path.exists():
        return []
    return [ln for ln in path.read_text().splitlines(keepends=True) if ln.strip() and json.loads(ln)["step"] <= upto_step]


def _check_resume_config(saved, cfg, path):
    a, b = saved.to_dict(), cfg.to_dict()
    diff = [k for k in a if k != "epochs" and a[k] != b[k]]
    if diff:
        detail = ", ".join(f"{k}: run has {a[k]!r}, flags give {b[k]!r}" for k in diff)
        raise UserError(f"{path}: --resume with a different configuration ({detail}); "
                        "only --epochs may change when resuming")


def train(cfg: TrainConfig, out, *, resume=False, progress=None, log=print, dataset=None):
    """Train the model of `cfg` (MLP, factorized MLP or CNN), writing the run folder `out`; returns the summary.

    `dataset` (a :class:`numpy_dlra.datasets.Dataset`) overrides ``cfg.data`` (used by tests).
    Raises UserError (before writing anything) for an unusable `out` or bad data.
    """
    out = Path(out)
    ckpt_path = out / "checkpoint.npz"
    dtype = np.dtype(cfg.dtype)
    if resume:
        arrays, meta = checkpoint.load(ckpt_path)
        _check_resume_config(TrainConfig.from_dict(meta["config"]), cfg, ckpt_path)
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: already exists and is not an empty folder; pass --resume to continue "
                        "the run there, or choose a new folder")
    data = (dataset or load_dataset(cfg.data, cfg.val_fraction, cfg.split_seed, log=log, dataset=cfg.dataset)).to(np, dtype)

    opt = Adam(cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
    rngs = make_rngs(cfg.seed)
    if resume:
        params = {k[6:]: a for k, a in arrays.items() if k.startswith("param/")}
        struct = {k[7:]: a for k, a in arrays.items() if k.startswith("struct/")}
        factors = [LayerFactors.from_arrays(struct, l) for l in range(1, len(cfg.sizes))] if struct else None
        model, params = _build_model(cfg, dtype, params=params, factors=factors, fn_k=meta.get("fn_k"))
        opt_state = {"t": meta["adam_t"],
                     "m": {k[7:]: a for k, a in arrays.items() if k.startswith("adam_m/")},
                     "v": {k[7:]: a for k, a in arrays.items() if k.startswith("adam_v/")}}
        for name, st in meta["rng"].items():
            rngs[name].bit_generator.state = st
        start, step, history = meta["epoch"], meta["step"], meta["history"]
        log(f"resuming {out} after epoch {start} (step {step})")
    else:
        model, params = _build_model(cfg, dtype, rng=rngs["init"])
        if cfg.init_from:
            params = _initial_params(cfg.init_from, params)
        opt_state = opt.init(params)
        start, step, history = 0, 0, []
    # the same network at initialization (FN adds one gain per layer): the reference of "compression"
    params0 = model.param_count() if cfg.method == "baseline" else MLP(cfg.sizes).param_count() + len(cfg.sizes) - 1
    reducer = probe = None
    if cfg.method == "dlra":
        reducer = RankReducer(model, FusionRules(cfg.tau_cos, cfg.tau_euc, cfg.fuse_ratio, cfg.rare_axes,
                                                 cfg.adam_merge, cfg.search_every))
        reducer.restore(params, cfg.lambda1, meta.get("pairs") if resume else None)
        probe = data.x_val[:cfg.probe_size] if cfg.probe_size else None

    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", cfg.to_dict())
    # metrics.jsonl (and merges.jsonl) always equal the checkpoint's history plus what this call appends
    atomic_write_bytes(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history).encode())
    if reducer:
        atomic_write_bytes(out / "merges.jsonl", "".join(_merge_lines(out / "merges.jsonl", step)).encode())

    x, y = data.x_train, data.y_train
    n, bs = len(x), cfg.batch_size
    n_batches = math.ceil(n / bs)
    for epoch in range(start + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        perm = rngs["shuffle"].permutation(n)
        loss_sum = task_sum = rare_sum = 0.0
        merges = []
        with Progress(n_batches, f"epoch {epoch}/{cfg.epochs}", enabled=progress) as bar:
            for i in range(n_batches):
                idx = perm[i * bs:(i + 1) * bs]
                loss, task, grads = model.loss_and_grads(params, x[idx], y[idx], training=True,
                                                         rng=rngs["dropout"], lambda2=cfg.lambda2)
                if reducer and cfg.lambda1:
                    rare = reducer.rare_term(params, grads, cfg.lambda1)  # adds lambda1 dL_RaRe/dW' to grads
                    loss += cfg.lambda1 * rare
                    rare_sum += rare
                if not math.isfinite(loss):
                    raise UserError(f"the loss became {loss} at step {step + 1} (epoch {epoch}); "
                                    "lower --lr or --grad-noise-eta, or use --dtype float64")
                if cfg.grad_noise_eta > 0:
                    add_gradient_noise(grads, opt_state["t"], cfg.grad_noise_eta, rngs["noise"],
                                       cfg.grad_noise_gamma)
                opt.step(params, grads, opt_state)
                step += 1
                if reducer:
                    reducer.refresh(params, cfg.lambda1, step)  # the one Gram per layer and axis of this step
                    merges += reducer.merge_step(params, opt_state, step, cfg.lambda1, probe)
                loss_sum += loss
                task_sum += task
                bar.update(1, loss=loss)
        n_params = model.param_count()
        rec = {
            "epoch": epoch,
            "step": step,
            "train_loss": loss_sum / n_batches,
            "train_task_loss": task_sum / n_batches,
            "train_rare_loss": rare_sum / n_batches,
            "val_acc": accuracy(model, params, data.x_val, data.y_val),
            "test_acc": accuracy(model, params, data.x_test, data.y_test),
            "params": n_params,
            "flops_per_sample": model.flops_per_sample(),
            "compression": compression(n_params, params0),
            "layers": model.layer_stats(),
            "merges": len(merges),
            "seconds": time.perf_counter() - t0,
        }
        history.append(rec)
        if reducer:
            with open(out / "merges.jsonl", "a") as f:
                f.write("".join(json.dumps(r) + "\n" for r in merges))
        arrays = _state_arrays(params, opt_state)
        meta = {"format": 1, "config": cfg.to_dict(), "epoch": epoch, "step": step, "adam_t": opt_state["t"],
                "rng": {k: r.bit_generator.state for k, r in rngs.items()}, "history": history}
        if isinstance(model, FactorizedMLP):
            for l, f in enumerate(model.factors, start=1):
                arrays.update({f"struct/{k}": v for k, v in f.arrays(l).items()})
            meta["fn_k"] = model.fn_k
        if reducer:
            meta["pairs"] = reducer.state()
        checkpoint.save(ckpt_path, arrays, meta)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        shapes = " ".join(f"{d['m']}x{d['n']}" for d in rec["layers"])
        log(f"epoch {epoch:>3}  step {step:>6}  loss {rec['train_loss']:.4f}  val {rec['val_acc']:.2f} %  "
            f"test {rec['test_acc']:.2f} %  ({rec['seconds']:.1f} s)"
            + (f"  shapes {shapes}  comp {rec['compression']:.2f} %" if reducer else ""))

    best = max(history, key=lambda r: r["val_acc"]) if history else None
    summary = {
        "dataset": data.name,
        "n_train": int(n), "n_val": int(len(data.y_val)), "n_test": int(len(data.y_test)),
        "final": history[-1] if history else None,
        "best_val_epoch": best["epoch"] if best else None,
        "test_acc_at_best_val": best["test_acc"] if best else None,
        "total_seconds": sum(r["seconds"] for r in history),
        "config": cfg.to_dict(),
    }
    _write_json(out / "summary.json", summary)
    return summary


def load_params(run_dir):
    """The parameters saved in `run_dir`'s checkpoint, as a dict ``W{l}``, ``b{l}`` -> array."""
    arrays, _ = checkpoint.load(Path(run_dir) / "checkpoint.npz")
    return {k[6:]: a for k, a in arrays.items() if k.startswith("param/")}


def train_or_reuse(cfg, out, log=print):
    """`train(cfg, out)` for the commands that chain runs: a run already finished with this config is
    reused (its summary returned), an unfinished one resumed, a missing one started."""
    out = Path(out)
    if (out / "summary.json").is_file():
        summary = json.loads((out / "summary.json").read_text())
        if summary["config"] == cfg.to_dict() and summary["final"] and summary["final"]["epoch"] == cfg.epochs:
            log(f"{out}: done before, reused")
            return summary
    return train(cfg, out, resume=(out / "checkpoint.npz").is_file(), progress=False, log=log)
