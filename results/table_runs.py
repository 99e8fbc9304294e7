"""Print a markdown table of finished runs: accuracy, size and per-layer shapes (Table 1-2 style).

Usage: python results/table_runs.py RUN_DIR [RUN_DIR ...]   (folders written by `numpy-dlra train`)
"""
import json
import sys
from pathlib import Path


def row(run):
    run = Path(run)
    cfg = json.loads((run / "config.json").read_text())
    hist = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    last, best = hist[-1], max(hist, key=lambda r: r["val_acc"])
    tail = hist[-5:]
    shapes = " ".join(f"{d['m']}x{d['n']}" + (f"/{d['feat']}" if d["feat"] != d["m"] else "") for d in last["layers"][1:])
    return (f"| {run.name} | {cfg['method']} | {cfg['data']} | {last['epoch']} | {last['test_acc']:.2f} | "
            f"{sum(r['test_acc'] for r in tail) / len(tail):.2f} | {best['test_acc']:.2f} (ep {best['epoch']}) | "
            f"{last['params']:,} | {last['compression']:.2f} | {last['flops_per_sample'] / 1e6:.3f} M | {shapes} | "
            f"{sum(r['seconds'] for r in hist) / len(hist):.1f} |")


if __name__ == "__main__":
    print("| run | method | data | epochs | test % (last) | test % (mean of last 5) | test % at best val | params | "
          "compression % | FLOPs | layers 2-6 m'xn' (/feat when > m') | s/epoch |")
    print("|" + "---|" * 12)
    for r in sys.argv[1:]:
        print(row(r))
