"""Merges per epoch over a DLRA run, per layer and axis, against what Table 2's shapes need.

Usage: python results/merge_trend.py RUN [RUN ...] [--window 20]
RUN: `numpy-dlra train --method dlra` folders (merges.jsonl, metrics.jsonl). For each window of
epochs it prints the merges per epoch (mean over the runs) on each layer and axis, then the merges
each layer and axis still needs to reach the paper's Table 2 shapes and, at the rate of the last
window, how many epochs that would take (a straight-line extrapolation, nothing more).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.experiments.tables import PAPER_TABLE2  # noqa: E402


def load(run):
    run = Path(run)
    merges = [json.loads(s) for s in (run / "merges.jsonl").read_text().splitlines() if s.strip()]
    metrics = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if s.strip()]
    steps_per_epoch = metrics[0]["step"]
    return merges, metrics, steps_per_epoch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--window", type=int, default=20)
    a = ap.parse_args(argv)
    data = [load(r) for r in a.runs]
    epochs = min(len(m) for _, m, _ in data)
    keys = sorted({(r["layer"], r["axis"]) for merges, _, _ in data for r in merges})
    print(f"{len(data)} run(s), {epochs} epochs each; merges per epoch, mean over the runs")
    print("| epochs | " + " | ".join(f"L{l} {ax}" for l, ax in keys) + " | all |")
    print("|---|" + "---|" * (len(keys) + 1))
    last = {}
    for lo in range(0, epochs, a.window):
        hi = min(lo + a.window, epochs)
        rate = {}
        for k in keys:
            n = sum(1 for merges, _, spe in data for r in merges
                    if (r["layer"], r["axis"]) == k and lo * spe < r["step"] <= hi * spe)
            rate[k] = n / len(data) / (hi - lo)
        last = rate
        print(f"| {lo + 1}-{hi} | " + " | ".join(f"{rate[k]:.2f}" for k in keys) + f" | {sum(rate.values()):.2f} |")
    final = [m[epochs - 1]["layers"] for _, m, _ in data]
    print(f"\nAfter {epochs} epochs (mean over the runs) against the paper's Table 2, and the epochs the last "
          f"window's rate would need to close the gap:")
    print("| layer | m' x n' here | paper | rows still to merge | at rate/epoch | epochs | cols still to merge | at rate/epoch | epochs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for l, ((pn, _), (pm, _), _) in sorted(PAPER_TABLE2.items()):  # (input n', output m', feature) means
        m = sum(f[l - 1]["m"] for f in final) / len(final)
        n = sum(f[l - 1]["n"] for f in final) / len(final)

        def need(todo, k):
            r = last.get(k, 0.0)
            return f"{max(todo, 0):.0f} | {r:.2f} | " + (f"{max(todo, 0) / r:.0f}" if r > 0 else ("0" if todo <= 0 else "never"))

        print(f"| {l} | {m:.0f} x {n:.0f} | {pm:.0f} x {pn:.0f} | {need(m - pm, (l, 'rows'))} | "
              f"{need(n - pn, (l, 'cols'))} |")


if __name__ == "__main__":
    main()
