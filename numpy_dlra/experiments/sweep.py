"""The fixed-rank baseline's experiment (Sainath et al. 2013): sweep the rank of the last layer and tabulate it.

``sweep_rank`` trains the full-rank network and one network per rank r (last layer B C, both
trainable), each with :func:`numpy_dlra.experiments.train.train` into its own folder under `out`, and writes:
- ``table.md``     the report's Tables 1-2: rank, error rate, trainable parameters (reduction %),
                   training time; plus the spectral distance of the last column;
- ``results.json`` the same numbers, machine-readable;
- ``spectral.png`` the report's Illustrations 1-2: ||W - W_r||_2 against r, where W is the trained
                   full-rank last layer and W_r its best rank-r approximation (= sigma_{r+1}).
A finished run folder is reused and an unfinished one resumed, so an interrupted sweep continues.
"""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.fetch import atomic_write_bytes
from ..nn.backend import to_numpy
from .run_folder import load_params
from .train import train_or_reuse


def last_layer(params):
    """The last layer's (m, n) weight of a run's parameters (the highest-numbered W, or B C)."""
    last = max(int(k[1:]) for k in params if k[0] in "WB")
    if f"W{last}" in params:
        return to_numpy(params[f"W{last}"]).astype(np.float64)
    return to_numpy(params[f"B{last}"]).astype(np.float64) @ to_numpy(params[f"C{last}"]).astype(np.float64)


def sweep_rank(base, ranks, out, log=print):
    """Train `base` (a TrainConfig, rank 0) and `base` with each rank in `ranks`; returns the result rows."""
    out = Path(out)
    rows = []
    full = None
    for r in [0] + [r for r in ranks if r]:
        cfg = replace(base, rank=r)
        s = train_or_reuse(cfg, out / (f"rank-{r}" if r else "full-rank"), log)
        f = s["final"]
        row = {"rank": r or "full", "error_rate": 100.0 - f["test_acc"], "params": f["params"],
               "seconds": s["total_seconds"], "dataset": s["dataset"], "epochs": f["epoch"]}
        if full is None:
            full = row
            W = last_layer(load_params(out / "full-rank"))
            sigma = np.linalg.svd(W, compute_uv=False)
        row["reduction"] = 100.0 * (full["params"] - row["params"]) / full["params"]
        m, n = W.shape
        row["last_layer_weights"] = m * r + r * n if r else m * n
        row["last_layer_reduction"] = 100.0 * (1.0 - row["last_layer_weights"] / (m * n))
        row["spectral_distance"] = float(sigma[r]) if r and r < len(sigma) else 0.0  # ||W - W_r||_2 = sigma_{r+1}
        rows.append(row)
    result = {"config": base.to_dict(), "ranks": ranks, "rows": rows,
              "spectral_distance_by_rank": [float(sigma[r]) if r < len(sigma) else 0.0 for r in range(1, min(W.shape) + 1)],
              "last_layer_shape": list(W.shape)}
    atomic_write_bytes(out / "results.json", (json.dumps(result, indent=2) + "\n").encode())
    atomic_write_bytes(out / "table.md", table(result).encode())
    plot_spectral(result, out / "spectral.png")
    return rows


def table(result):
    """The report's table as markdown, with a caption that says what was run."""
    c, rows = result["config"], result["rows"]
    m, n = result["last_layer_shape"]
    used = rows[0]["dataset"]
    if not used.startswith(c["dataset"]):  # e.g. MNIST asked for, absent, Fashion-MNIST used
        used += f" ({c['dataset']} was asked for and is not on this machine)"
    lines = [f"Rank of the last layer ({m} x {n}) of the {c['model'].upper()} on {used}: "
             f"{rows[0]['epochs']} epochs, batch {c['batch_size']}, Adam lr {c['lr']}, seed {c['seed']}, "
             f"gradient noise eta {c['grad_noise_eta']}" + (f", dropout {c['dropout']}" if c["model"] == "mlp" else "")
             + ". Error rate on the test set after the last epoch; time = training plus per-epoch evaluation.", "",
             "| rank | error rate | # of parameters (reduction %) | execution time (seconds) | "
             "last-layer weights (reduction %) | ‖W - W_r‖₂ of the full-rank layer |", "|---|---|---|---|---|---|"]
    for r in rows:
        full = r["rank"] == "full"
        red, last = ("", "") if full else (f" ({r['reduction']:.1f}%)", f" ({r['last_layer_reduction']:.1f}%)")
        lines.append(f"| {r['rank']} | {r['error_rate']:.2f} % | {r['params']:,}{red} | {r['seconds']:.0f} | "
                     f"{r['last_layer_weights']:,}{last} | {r['spectral_distance']:.3f} |")
    return "\n".join(lines) + "\n"


def plot_spectral(result, path):
    """The report's Illustrations 1-2: spectral distance between the full-rank last layer and its rank-r SVD."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = result["spectral_distance_by_rank"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(range(1, len(d) + 1), d, "o-", ms=3)
    ax.set_xlabel("rank r")
    ax.set_ylabel(r"$\|W - W_r\|_2 = \sigma_{r+1}$")
    c = result["config"]
    ax.set_title(f"{c['model'].upper()} last layer {result['last_layer_shape'][0]}x{result['last_layer_shape'][1]}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
