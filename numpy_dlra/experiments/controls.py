"""Is DLRA better than training a smaller network? The controls at equal size, for one DLRA run and its baseline.

DLRA's run gives two sizes (metrics.jsonl's last record): the exported network's, a plain MLP whose hidden
widths are the reduced feature counts G_l (``numpy-dlra export``), and the factorized W' count the paper
reports. At those sizes, on the same data, seed and epochs (``controls``):

    scratch-dense    a dense MLP of the exported widths, trained as the baseline is       (exported count)
    scratch-fn       the same with FN (FN alone beat the baseline)                        (exported count)
    scratch-uniform  a narrower baseline, equal hidden widths, at the W' count             (W' count)
    scratch-lowrank  fixed-rank factors B C (Sainath et al.) at ranks that give each       (W' count)
                     reduced layer its W' count, trained from the start
    pruned-l1        the dense baseline's hidden units pruned to the exported widths by    (exported count)
                     the l1-norm of their incoming weights, as is and fine-tuned
    svd              the dense baseline's reduced layers truncated by SVD to those ranks,   (W' count)
                     as is and fine-tuned

The as-is accuracies are measured here; every other arm is a training run (``train_or_reuse``: a finished
run is reused, an unfinished one resumed). ``results.json`` lists the arms and their run folders;
``numpy-dlra analyze controls DIR ...`` tabulates them over seeds with Welch's p against DLRA.
"""
import io
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.fetch import atomic_write_bytes
from ..dlra.equations import truncate_svd
from ..errors import UserError
from ..models.mlp import MLP
from .config import TrainConfig
from .run_folder import RunFolder, load_params
from .train import accuracy, run_data, train_or_reuse


def sizes_of(dlra_run):
    """(exported widths, exported count, W' count, per-layer (m', n')) of a DLRA run's last metrics record."""
    folder = Path(dlra_run)
    try:
        cfg = TrainConfig.from_dict(json.loads((folder / "config.json").read_text()))
        last = [json.loads(ln) for ln in (folder / "metrics.jsonl").read_text().splitlines() if ln.strip()][-1]
    except (OSError, ValueError, IndexError):
        raise UserError(f"--dlra {dlra_run}: no config.json and metrics.jsonl with a finished epoch there") from None
    layers = last["layers"]
    widths = [cfg.sizes[0]] + [d["feat"] for d in layers[:-1]] + [cfg.sizes[-1]]
    return widths, MLP(tuple(widths)).param_count(), last["params"], [(d["m"], d["n"]) for d in layers]


def uniform_width(sizes, count):
    """The hidden width w for which sizes[0]-w-...-w-sizes[-1] (as many hidden layers as `sizes`) has about
    `count` parameters: (H-1) w^2 + (n_0 + n_L + H) w + n_L = count, H hidden layers."""
    H, n0, nL = len(sizes) - 2, sizes[0], sizes[-1]
    a, b, c = H - 1, n0 + nL + H, nL - count
    w = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return max(1, round(w))


def ranks_at_count(sizes, shapes):
    """{layer: r} for the layers DLRA reduced: the rank r whose factors B C (m r + r n) hold at most the layer's
    W' count m' n'. Layers DLRA left whole stay dense."""
    ranks = {}
    for l, (mp, np_) in enumerate(shapes, start=1):
        m, n = sizes[l], sizes[l - 1]
        if (mp, np_) != (m, n):
            ranks[l] = max(1, min(min(m, n), (mp * np_) // (m + n)))
    return ranks


def prune_l1(dense, widths):
    """The dense MLP's hidden units pruned to `widths` (input, hidden ..., classes): layer by layer, keep the units
    whose incoming weights (row of W_l, over the inputs still kept) have the largest l1-norm; their outgoing
    weights (columns of W_{l+1}) follow. Returns the pruned parameters (float64)."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in dense.items()}
    L = len(widths) - 1
    for l in range(1, L):
        W = p[f"W{l}"]
        keep = np.sort(np.argsort(-np.abs(W).sum(axis=1), kind="stable")[:widths[l]])
        p[f"W{l}"], p[f"b{l}"] = W[keep], p[f"b{l}"][keep]
        p[f"W{l + 1}"] = p[f"W{l + 1}"][:, keep]
    return p


def truncate(dense, ranks):
    """The dense MLP with the layers in `ranks` replaced by their SVD truncation B C (Eckart-Young)."""
    out = {}
    for k, v in dense.items():
        l = int(k[1:])
        if k[0] == "W" and l in ranks:
            out[f"B{l}"], out[f"C{l}"] = truncate_svd(np.asarray(v, dtype=np.float64), ranks[l])
        else:
            out[k] = np.asarray(v, dtype=np.float64)
    return out


TRAINED = ("scratch-dense", "scratch-fn", "scratch-uniform", "scratch-lowrank", "pruned-l1-finetuned", "svd-finetuned")


def controls(dlra_run, baseline_run, out, finetune_epochs=10, train=True, log=print, arms_to_train=None):
    """Train the controls of one DLRA run that are missing (those in `arms_to_train`; none with ``train=False``),
    measure the as-is arms, and write ``results.json`` into `out` (every arm listed, trained or not); returns
    its dict."""
    arms_to_train = TRAINED if arms_to_train is None else arms_to_train
    unknown = set(arms_to_train) - set(TRAINED)
    if unknown:
        raise UserError(f"--arms {','.join(sorted(unknown))}: choose among {','.join(TRAINED)}")
    widths, exported, wprime, shapes = sizes_of(dlra_run)
    dcfg = TrainConfig.from_dict(json.loads((Path(dlra_run) / "config.json").read_text()))
    bsum = RunFolder(baseline_run).summary()
    if not bsum:
        raise UserError(f"--baseline {baseline_run}: no finished run here (summary.json missing); train it first")
    bcfg = TrainConfig.from_dict(bsum["config"])
    if bcfg.method != "baseline" or bcfg.sizes != dcfg.sizes or (bcfg.data, bcfg.data_sha256, bcfg.seed) != \
            (dcfg.data, dcfg.data_sha256, dcfg.seed):
        raise UserError(f"--baseline {baseline_run}: not the dense baseline of {dlra_run} (method, sizes, data or seed "
                        "differ)")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create this folder ({exc.strerror or exc})") from None
    base = replace(bcfg, epochs=dcfg.epochs)
    width = uniform_width(dcfg.sizes, wprime)
    ranks = ranks_at_count(dcfg.sizes, shapes)
    scratch = {
        "scratch-dense": replace(base, sizes=tuple(widths)),
        "scratch-fn": replace(base, method="fn", sizes=tuple(widths)),
        "scratch-uniform": replace(base, sizes=(dcfg.sizes[0],) + (width,) * (len(dcfg.sizes) - 2) + (dcfg.sizes[-1],)),
        "scratch-lowrank": replace(base, layer_ranks=tuple(sorted(ranks.items()))),
    }
    arms = {}
    for name, cfg in scratch.items():
        arms[name] = {"run": str(out / name), "count": MLP(cfg.sizes, ranks=cfg.layer_ranks).param_count()
                      + (len(cfg.sizes) - 1 if cfg.method == "fn" else 0)}
    ranks_json = {str(l): r for l, r in ranks.items()}  # as results.json writes them
    same = {"seed": dcfg.seed, "exported_widths": widths, "ranks": ranks_json,
            "finetune_epochs": finetune_epochs}  # what an earlier results.json must agree on to lend its entries
    dense = _baseline_params(baseline_run, out, arms, train and set(arms_to_train) & POST_TRAINED, log, same)
    post = {}
    if dense is not None:
        pruned, truncated = prune_l1(dense, widths), truncate(dense, ranks)
        post = {"pruned-l1": (pruned, MLP(tuple(widths)), replace(bcfg, sizes=tuple(widths))),
                "svd": (truncated, MLP(bcfg.sizes, ranks=tuple(sorted(ranks.items()))),
                        replace(bcfg, layer_ranks=tuple(sorted(ranks.items()))))}
        data = run_data(bcfg, log).to(np, np.float64)
    for name, (params, model, cfg) in post.items():
        npz = out / f"{name}.npz"
        buf = io.BytesIO()
        np.savez(buf, **{k: v.astype(np.float32) for k, v in params.items()})
        atomic_write_bytes(npz, buf.getvalue())
        arms[name] = {"count": model.param_count(), "test_acc": accuracy(model, params, data.x_test, data.y_test)}
        arms[f"{name}-finetuned"] = {"run": str(out / f"{name}-finetuned"), "count": model.param_count()}
        scratch[f"{name}-finetuned"] = replace(cfg, epochs=finetune_epochs, init_from=str(npz))
    if train:
        for name, cfg in scratch.items():
            if name in arms_to_train:
                train_or_reuse(cfg, out / name, log)
    result = {"dlra_run": str(dlra_run), "baseline_run": str(baseline_run), "seed": dcfg.seed,
              "epochs": dcfg.epochs, "finetune_epochs": finetune_epochs, "exported_widths": widths,
              "counts": {"dense": MLP(dcfg.sizes).param_count(), "exported": exported, "wprime": wprime},
              "uniform_width": width, "ranks": ranks_json, "arms": arms}
    atomic_write_bytes(out / "results.json", (json.dumps(result, indent=2) + "\n").encode())
    return result


POST_TRAINED = {"pruned-l1-finetuned", "svd-finetuned"}  # the arms that start from the baseline's checkpoint


def _baseline_params(baseline_run, out, arms, finetune, log, same):
    """The baseline's trained parameters, or None when its folder has no checkpoint (a committed results/ folder
    keeps none) and no fine-tuned arm is to be trained: then the as-is and fine-tuned arms' entries of an earlier
    results.json in `out` are kept into `arms` (they are not measured again), provided it agrees with this call on
    `same` (seed, exported widths, ranks, fine-tuning epochs); `log` says so."""
    folder = RunFolder(baseline_run)
    if folder.checkpoint.exists() or folder.previous.exists():
        return load_params(baseline_run)  # an unreadable checkpoint is an error naming it
    if finetune:
        raise UserError(f"--baseline {baseline_run}: no checkpoint here, and the pruned and SVD arms start from it: "
                        "give a baseline run that has one, or leave pruned-l1-finetuned and svd-finetuned out "
                        "of --arms")
    earlier, kept = out / "results.json", {}
    if earlier.exists():
        try:
            old = json.loads(earlier.read_text())
            kept = {k: v for k, v in old["arms"].items() if k.startswith(("pruned-l1", "svd"))}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise UserError(f"--out {out}: its results.json is unreadable; delete it, or give a baseline run with its "
                            "checkpoint, which measures the pruned and SVD arms again") from None
        differ = [k for k, v in same.items() if old.get(k) != v]
        if differ:
            raise UserError(f"--out {out}: its results.json is of other controls ({', '.join(differ)} differ from "
                            f"--dlra and --finetune-epochs); give the --out of this run's controls, or a baseline run "
                            "with its checkpoint, which measures the pruned and SVD arms again")
    arms.update(kept)
    log(f"controls: --baseline {baseline_run} has no checkpoint: the pruned and SVD arms are "
        f"{'kept from ' + str(earlier) if kept else 'left out'} (not measured again)")
    return None


ARMS = (  # (key, label, which count it matches), in the table's order
    ("dlra", "DLRA itself", "its own (W')"),
    ("scratch-dense", "dense MLP of the exported widths, from scratch", "exported"),
    ("scratch-fn", "the same with FN, from scratch", "exported"),
    ("pruned-l1", "baseline pruned to the exported widths (l1 of incoming weights), as is", "exported"),
    ("pruned-l1-finetuned", "the same, fine-tuned", "exported"),
    ("scratch-uniform", "narrower baseline (equal widths), from scratch", "W'"),
    ("scratch-lowrank", "fixed-rank B C at the W' count, from scratch", "W'"),
    ("svd", "baseline SVD-truncated to the W' count, as is", "W'"),
    ("svd-finetuned", "the same, fine-tuned", "W'"),
    ("baseline", "the dense baseline", "dense"),
)


def table(directories, log=print, plot=None):
    """The controls of several seeds (one ``controls`` output folder each) side by side: per arm the runs
    finished, test accuracy (a trained run's mean over its last epochs, as Table 1; an as-is arm's one
    evaluation) as mean ± std over seeds, the parameters, and Welch's p of DLRA against the arm."""
    from . import tables

    results = []
    for d in directories:
        try:
            results.append(json.loads((Path(d) / "results.json").read_text()))
        except (OSError, ValueError):
            raise UserError(f"{d}: no results.json there; give folders written by `numpy-dlra controls`") from None
    acc, count = {k: [] for k, _, _ in ARMS}, {k: [] for k, _, _ in ARMS}
    for d, r in zip(directories, results):
        runs = {"dlra": (r["dlra_run"], r["counts"]["wprime"]), "baseline": (r["baseline_run"], r["counts"]["dense"])}
        # an arm's run beside results.json (a copied folder) before the path it was trained at
        runs |= {k: (Path(d) / k if (Path(d) / k).is_dir() else a["run"], a["count"]) for k, a in r["arms"].items()
                 if "run" in a}
        for k, a in r["arms"].items():
            if "test_acc" in a:
                acc[k].append(a["test_acc"])
                count[k].append(a["count"])
        for k, (run, n) in runs.items():
            records = tables.read_metrics(run)
            cfg = json.loads((Path(run) / "config.json").read_text()) if records else {}
            if records and records[-1]["epoch"] == cfg.get("epochs"):  # finished runs only
                acc[k].append(tables.run_stats(records)["acc"])
                count[k].append(n)
    lines = ["| arm | matches the count | runs | test accuracy (%) | parameters | p: DLRA vs the arm (Welch) |",
             "|---|---|---|---|---|---|"]
    for k, label, which in ARMS:
        if not acc[k]:
            lines.append(f"| {label} | {which} | 0 | no finished run found | | |")
            continue
        m, sd = tables.mean_std(acc[k])
        p = None if k == "dlra" else tables.welch_p(acc["dlra"], acc[k])
        lines.append(f"| {label} | {which} | {len(acc[k])} | {m:.2f} ± {sd:.2f} | {np.mean(count[k]):,.0f} | "
                     f"{'n/a' if p is None else f'{p:.2g}'} |")
    ex = np.mean([r["counts"]["exported"] for r in results])
    lines += ["", f"Seeds {', '.join(str(r['seed']) for r in results)}; {results[0]['epochs']} epochs; fine-tuning "
                  f"{results[0]['finetune_epochs']} epochs. DLRA's parameters are its W' count; its exported network "
                  f"holds {ex:,.0f} on average."]
    if plot:
        _plot(plot, acc, count, ex)
    text = "\n".join(lines)
    log(text)
    return text


def _plot(path, acc, count, exported):
    """Accuracy against parameters, every arm as mean ± std over seeds: the whole range on the left, and on the
    right, zoomed, the arms within 2 points of the best one (where the question is decided; DLRA too when it is
    that close)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (whole, near) = plt.subplots(1, 2, figsize=(12, 4.8))
    points = []
    for i, (k, label, _) in enumerate(ARMS):
        if acc[k]:
            sd = np.std(acc[k], ddof=1) if len(acc[k]) > 1 else 0.0
            points.append((label, np.mean(count[k]) / 1e6, np.mean(acc[k]), sd, f"C{i}", "os^vD<>ph*"[i % 10]))
    for ax in (whole, near):
        for label, x, m, sd, color, marker in points:
            ax.errorbar(x, m, yerr=sd, fmt=marker, color=color, capsize=3, label=label)
        if acc["dlra"]:
            ax.axvline(exported / 1e6, color="0.7", ls=":", label="DLRA's exported count")
        ax.set(xlabel="parameters (M)", ylabel="test accuracy (%)")
    whole.set_title("every arm")
    if points:
        best = max(m for _, _, m, _, _, _ in points)
        close = [(m, sd) for _, _, m, sd, _, _ in points if m >= best - 2.0]
        near.set_ylim(min(m - sd for m, sd in close) - 0.15, max(m + sd for m, sd in close) + 0.15)
        near.set_title("within 2 points of the best arm")
    handles, labels = whole.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3)
    fig.suptitle("DLRA against the controls at equal size (mean ± std over seeds)")
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
