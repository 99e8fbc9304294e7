"""The L2 readings side by side: one row per arm of `numpy-dlra reproduce table1 ... --out DIR/ARM`.

Usage: python results/table_readings.py runs/readings-e60
Each ARM folder (l2-w, l2-effective, no-l2, base, l2-w-search4, l2-w-eq13eff, fn-l2-w) holds run folders under
runs/; a row per method and arm: test accuracy (each run's mean over its last 5 epochs, then mean +- std over runs), the
p-value of Welch's t-test against the baseline's runs, compression and merges.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.experiments import tables  # noqa: E402

root = Path(sys.argv[1])
arms = {"base": "", "l2-w": "L2 on W' (as printed)", "l2-effective": "L2 on FN(W') (= on P FN(W') Q)",
        "no-l2": "no L2 (lambda2 0)", "l2-w-search4": "L2 on W', --search-every 4 (the approximation)",
        "l2-w-eq13eff": "L2 on W', Eq. 13 on c W' (--eq13-on effective)",
        "fn-l2-w": "L2 on W' (lambda2 0.1, as dlra's default)"}
runs = {}
for arm, label in arms.items():
    for d in sorted((root / arm / "runs").glob("*-seed*")):
        if d.is_dir():
            method = d.name.rsplit("-seed", 1)[0]
            runs.setdefault((method if arm == "base" else f"{method}, {label}"), []).append(tables.read_metrics(d))
base = [tables.run_stats(r)["acc"] for r in runs.get("baseline", []) if r]
print("| run | runs | epochs | test accuracy (%) | p vs baseline (Welch) | compression (%) | merges |")
print("|---|---|---|---|---|---|---|")
for name, rs in runs.items():
    rs = [r for r in rs if r]
    st = [tables.run_stats(r) for r in rs]
    acc = [s["acc"] for s in st]
    p = None if name == "baseline" else tables.welch_p(acc, base)
    m, sd = tables.mean_std(acc)
    c = tables.mean_std([s["comp"] for s in st])
    merges = tables.mean_std([sum(e["merges"] for e in r) for r in rs])
    print(f"| {name} | {len(rs)} | {min(s['epochs'] for s in st)} | {m:.2f} ± {sd:.2f} | "
          f"{'n/a' if p is None else f'{p:.1e}'} | {c[0]:.2f} ± {c[1]:.2f} | {merges[0]:.0f} |")

for arm, what in (("l2-w-search4", "--search-every 4"), ("l2-w-eq13eff", "--eq13-on effective")):
    exact, other = (runs.get(f"dlra, {arms[a]}") for a in ("l2-w", arm))
    if exact and other and len([r for r in other if r]) > 1:
        sts = [[tables.run_stats(r) for r in rs if r] for rs in (exact, other)]
        print(f"\n{what} against the default (both L2 on W'): accuracy p = "
              f"{tables.welch_p([s['acc'] for s in sts[1]], [s['acc'] for s in sts[0]]):.2f}, compression p = "
              f"{tables.welch_p([s['comp'] for s in sts[1]], [s['comp'] for s in sts[0]]):.2g} (Welch)")
