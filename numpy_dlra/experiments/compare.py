"""At the per-layer ranks DLRA found, DLRA against the classic fixed-rank answers: one command, one table.

Given a finished DLRA run and a finished dense baseline run (same data and epochs), the rank DLRA
found for layer l is r_l = min(m'_l, n'_l), the rank of P FN(W'_l) Q (checked numerically). For the
layers DLRA reduced (r_l < min(m_l, n_l)) ``compare_ranks`` reports:
- DLRA itself (its W' are r_l-dimensional: m'_l n'_l weights);
- the dense baseline;
- the baseline with those layers truncated by SVD to rank r_l (B C, Eckart-Young), as is;
- the same, fine-tuned for a few epochs (B, C trainable);
- fixed-rank factors B C of ranks r_l trained from scratch, as long as DLRA trained.
It writes ``table.md`` and ``results.json`` into `out`, and the runs under it.
"""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.fetch import atomic_write_bytes
from ..dlra.equations import truncate_svd
from ..errors import UserError
from ..models.mlp import MLP
from .build import build_model
from .config import TrainConfig
from .run_folder import RunFolder, load_params
from .train import accuracy, run_data, train_or_reuse


def _finished(run, method):
    summary = RunFolder(run).summary()
    if summary is None:
        raise UserError(f"{run}: no finished run here (summary.json missing); train it first")
    cfg = TrainConfig.from_dict(summary["config"])
    if cfg.method not in method:
        raise UserError(f"{run}: a --method {cfg.method} run; this needs {' or '.join(method)}")
    return cfg, summary


def dlra_ranks(run):
    """{layer: (m', n', numerical rank of P FN(W') Q)} of a DLRA (or fn) run's last checkpoint."""
    state = RunFolder(run).load()
    model, params = build_model(state.config, state=state)
    L = model.n_layers
    dense = model.to_dense(params)
    out = {}
    for l in range(1, L + 1):
        m, n = model.shape(l)
        s = np.linalg.svd(dense[f"W{l}"], compute_uv=False)
        out[l] = (m, n, int((s > s[0] * max(dense[f"W{l}"].shape) * np.finfo(np.float32).eps).sum()))
    return out


def compare_ranks(dlra_run, baseline_run, out, finetune_epochs=5, log=print):
    """Train what is missing and write the comparison; returns the table rows."""
    dcfg, dsum = _finished(dlra_run, ("dlra",))
    bcfg, bsum = _finished(baseline_run, ("baseline",))
    if (bcfg.sizes, bcfg.dataset, bcfg.data, bcfg.data_sha256, bcfg.layer_ranks, bcfg.rank) != \
            (dcfg.sizes, dcfg.dataset, dcfg.data, dcfg.data_sha256, (), 0):
        raise UserError(f"{baseline_run}: not the dense counterpart of {dlra_run} (sizes, dataset or data differ)")
    out = Path(out)
    found = dlra_ranks(dlra_run)
    sizes = dcfg.sizes
    ranks = {l: min(m, n) for l, (m, n, _) in found.items() if min(m, n) < min(sizes[l], sizes[l - 1])}
    if not ranks:
        raise UserError(f"{dlra_run}: DLRA reduced no layer's rank; nothing to compare")
    model = MLP(sizes, bcfg.dropout, tuple(sorted(ranks.items())))
    dense = load_params(baseline_run)
    truncated = {}
    for l in range(1, len(sizes)):
        if l in ranks:
            B, C = truncate_svd(dense[f"W{l}"].astype(np.float64), ranks[l])
            truncated[f"B{l}"], truncated[f"C{l}"] = B.astype(np.float32), C.astype(np.float32)
        else:
            truncated[f"W{l}"] = dense[f"W{l}"]
        truncated[f"b{l}"] = dense[f"b{l}"]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create this folder ({exc.strerror or exc})") from None
    np.savez(out / "truncated.npz", **truncated)
    data = run_data(bcfg, log).to(np, np.float32)
    fixed = replace(bcfg, layer_ranks=tuple(sorted(ranks.items())))
    tuned = train_or_reuse(replace(fixed, epochs=finetune_epochs, init_from=str(out / "truncated.npz")), out / "svd-finetuned", log)
    scratch = train_or_reuse(replace(fixed, epochs=dcfg.epochs), out / "fixed-rank-scratch", log)
    rows = [
        ("DLRA (rank found while training)", dsum["final"]["test_acc"], dsum["final"]["params"], dcfg.epochs),
        ("dense baseline", bsum["final"]["test_acc"], bsum["final"]["params"], bcfg.epochs),
        ("baseline, SVD-truncated to those ranks", accuracy(model, truncated, data.x_test, data.y_test),
         model.param_count(), bcfg.epochs),
        (f"baseline, SVD-truncated, fine-tuned {finetune_epochs} epochs", tuned["final"]["test_acc"],
         tuned["final"]["params"], bcfg.epochs + finetune_epochs),
        ("fixed-rank factors B C, from scratch", scratch["final"]["test_acc"], scratch["final"]["params"], dcfg.epochs),
    ]
    result = {"dlra_run": str(dlra_run), "baseline_run": str(baseline_run), "dataset": data.name,
              "ranks": {str(l): {"m'": m, "n'": n, "numerical_rank": r} for l, (m, n, r) in found.items()},
              "rows": [dict(zip(("model", "test_acc", "params", "epochs"), r)) for r in rows]}
    atomic_write_bytes(out / "results.json", (json.dumps(result, indent=2) + "\n").encode())
    ranks_txt = ", ".join(f"layer {l}: {r}" for l, r in sorted(ranks.items()))
    lines = [f"At the ranks DLRA found ({ranks_txt}; {data.name}, seed {dcfg.seed}). Test accuracy after the "
             "last epoch; params = trainable parameters; epochs = all training the weights had.", "",
             "| model | test accuracy | params | epochs |", "|---|---|---|---|"]
    lines += [f"| {name} | {acc:.2f} % | {p:,} | {e} |" for name, acc, p, e in rows]
    atomic_write_bytes(out / "table.md", ("\n".join(lines) + "\n").encode())
    return rows
