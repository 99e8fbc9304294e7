"""Several arms of run folders side by side, against the first arm (the baseline): one row per arm.

Usage: python results/table_arms.py "LABEL=GLOB" ["LABEL=GLOB" ...]
Each GLOB names run folders (config.json, metrics.jsonl), e.g. "dlra, no L2=runs/repro-full-nol2/runs/dlra-seed*".
Columns: the runs and their epochs; test accuracy (each run's mean over its last 5 epochs, then
mean ± std over the runs); Welch's p against the first arm; compression; trainable parameters; merges
per run; and the epoch at which the arm's mean test accuracy (20-epoch moving average) first reaches
the first arm's best, as Fig. 1 counts it. Only finished runs count: each arm's runs must all have
the epochs of its longest.
"""
import glob
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from numpy_dlra.experiments import tables  # noqa: E402


def arm(spec):
    label, pattern = spec.split("=", 1)
    runs = [tables.read_metrics(Path(d)) for d in sorted(glob.glob(pattern)) if Path(d).is_dir()]
    runs = [r for r in runs if r]
    longest = max((len(r) for r in runs), default=0)
    return label, [r for r in runs if len(r) == longest]


def curve(runs):
    n = min(len(r) for r in runs)
    return tables.moving_average(np.mean([[e["test_acc"] for e in r[:n]] for r in runs], axis=0), 20)


def main(argv):
    if not argv or any("=" not in a for a in argv):
        raise SystemExit(__doc__)
    arms = [arm(a) for a in argv]
    empty = [label for label, runs in arms if not runs]
    if empty:
        raise SystemExit(f"no finished run for: {', '.join(empty)}")
    base_runs = arms[0][1]
    base_acc = [tables.run_stats(r)["acc"] for r in base_runs]
    best = float(curve(base_runs).max())
    print("| arm | runs | epochs | test accuracy (%) | p vs " + arms[0][0] + " (Welch) | compression (%) | "
          "params (M) | merges | epoch reaching the first arm's best |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, (label, runs) in enumerate(arms):
        st = [tables.run_stats(r) for r in runs]
        acc, comp = tables.mean_std([s["acc"] for s in st]), tables.mean_std([s["comp"] for s in st])
        params = tables.mean_std([s["params"] / 1e6 for s in st])
        merges = np.mean([sum(e.get("merges", 0) for e in r) for r in runs])
        p = None if i == 0 else tables.welch_p([s["acc"] for s in st], base_acc)
        p = "n/a" if p is None else f"{p:.1e}"  # the first arm, or fewer than 2 runs
        reach = tables.epochs_to_reach(curve(runs), best)
        print(f"| {label} | {len(runs)} | {st[0]['epochs']} | {acc[0]:.2f} ± {acc[1]:.2f} | {p} | "
              f"{comp[0]:.2f} ± {comp[1]:.2f} | {params[0]:.3f} | {merges:.0f} | {reach or 'not reached'} |")
    print(f"\nThe first arm's best: {best:.2f} % (20-epoch moving average of its mean test accuracy).")


if __name__ == "__main__":
    main(sys.argv[1:])
