"""Figures 1-4 of the paper from run folders (matplotlib, PNG). Each takes what the runner trained.

- Fig. 1: test accuracy and training loss against epoch (mean over runs, and its 20-epoch moving
  average), the baseline's best as a dashed line, and the epochs-to-the-baseline's-best ratio;
- Fig. 2: the tau_cos x tau_euc grid: compression and accuracy;
- Fig. 3: the lambda1 sweep: accuracy against lambda1 and against compression;
- Fig. 4: compression and every layer's input, output and feature dimensions over training.
"""
import numpy as np

from .tables import moving_average, speedup


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curve(runs, key):
    E = min(len(r) for r in runs)
    return np.mean([[x[key] for x in r[:E]] for r in runs], axis=0)


def _save(fig, path):
    import os

    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)  # atomic: a killed runner leaves the old figure or the new one


def figure1(runs_by_method, path, window=20):
    plt = _plt()
    sp = speedup(runs_by_method, window)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for m, runs in runs_by_method.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        acc, loss = _curve(runs, "test_acc"), _curve(runs, "train_loss")
        x = np.arange(1, len(acc) + 1)
        line, = a.plot(x, acc, alpha=0.3)
        label = m + (f" (reaches it at epoch {sp[m][0]}: {sp[m][1]:.1f}x)" if sp.get(m) and sp[m][0] else "")
        a.plot(x, moving_average(acc, window), color=line.get_color(), label=label)
        b.plot(x, loss, alpha=0.3, color=line.get_color())
        b.plot(x, moving_average(loss, window), color=line.get_color(), label=m)
    if sp:
        a.axhline(sp["baseline_best"][1], ls="--", color="k", lw=0.8, label=f"baseline's best ({sp['baseline_best'][1]:.2f} %)")
    a.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"Fig. 1a (mean over runs; {window}-epoch moving average)")
    b.set(xlabel="epoch", ylabel="training loss", title="Fig. 1b")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)
    return sp


def figure2(grid, path, baseline_acc=None):
    """grid: {(tau_cos, tau_euc): {"acc": (mean, std), "comp": (mean, std)}}; a cell without runs holds nan.
    baseline_acc (mean, std) or None, named in the accuracy panel's title."""
    plt = _plt()
    tc, te = sorted({k[0] for k in grid}), sorted({k[1] for k in grid})
    base = f"; baseline {baseline_acc[0]:.2f}" if baseline_acc else ""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, key, title in zip(axes, ("comp", "acc"), ("compression (%)", f"test accuracy (%{base})")):
        cells = [[grid.get((c, e), {}).get(key, (np.nan, np.nan)) for e in te] for c in tc]
        im = ax.imshow(np.array([[m for m, _ in row] for row in cells]), cmap="viridis")
        for i, row in enumerate(cells):
            for j, (m, sd) in enumerate(row):
                text = "no runs" if np.isnan(m) else f"{m:.2f}\n± {sd:.2f}"
                light = not np.isnan(m) and im.norm(m) > 0.6  # viridis is light at the top: dark text there
                ax.text(j, i, text, ha="center", va="center", color="k" if light else "w", fontsize=8)
        ax.set(xticks=range(len(te)), xticklabels=te, yticks=range(len(tc)), yticklabels=tc, xlabel="tau_euc",
               ylabel="tau_cos", title=f"Fig. 2: {title}")
        fig.colorbar(im, ax=ax)
    _save(fig, path)
    plt.close(fig)


def figure3(sweep, baseline_acc, path):
    """sweep: {lambda1: {"acc": (mean, std), "comp": (mean, std)}}; baseline_acc (mean, std) or None."""
    plt = _plt()
    lam = sorted(sweep)
    acc = np.array([sweep[k]["acc"] for k in lam])
    comp = np.array([sweep[k]["comp"] for k in lam])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.errorbar(lam, acc[:, 0], acc[:, 1], marker="o")
    a.set(xscale="log", xlabel="lambda1", ylabel="test accuracy (%)", title="Fig. 3a")
    b.errorbar(comp[:, 0], acc[:, 0], acc[:, 1], comp[:, 1], marker="o", ls="")
    for k, c, y in zip(lam, comp[:, 0], acc[:, 0]):
        b.annotate(f"λ1={k:g}", (c, y), fontsize=7)
    b.set(xlabel="compression (%)", ylabel="test accuracy (%)", title="Fig. 3b")
    if baseline_acc:
        for ax in (a, b):
            ax.axhline(baseline_acc[0], ls="--", color="k", lw=0.8, label="baseline")
        a.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)


def figure4(dlra_runs, path):
    plt = _plt()
    runs = [r for r in dlra_runs if r]
    E = min(len(r) for r in runs)
    x = np.arange(1, E + 1)
    L = len(runs[0][0]["layers"])
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    axes[0].plot(x, _curve(runs, "compression"))
    axes[0].set(xlabel="epoch", ylabel="compression (%)", title="Fig. 4a")
    for ax, key, name in zip(axes[1:], ("feat", "n", "m"), ("feature", "input", "output")):
        for l in range(2, L + 1):
            ax.plot(x, np.mean([[e["layers"][l - 1][key] for e in r[:E]] for r in runs], axis=0), label=f"layer {l}")
        ax.set(xlabel="epoch", ylabel=f"{name} dimension", title=f"Fig. 4: {name} dimensions", yscale="log")
        ax.yaxis.set_major_formatter("{x:.0f}")  # plain numbers on the log axis, not 10^2 and 3x10^2
        ax.yaxis.set_minor_formatter("{x:.0f}")
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
