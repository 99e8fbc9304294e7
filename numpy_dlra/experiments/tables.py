"""Tables 1 and 2 of the paper from run folders: the statistics, the paper's numbers beside ours.

Table 1, per method: test accuracy as the paper reports it (each run's mean over its last 5
epochs, then mean +- sample std over the runs), Welch's t-test against the baseline
(``scipy.stats.ttest_ind(equal_var=False)``: the paper names no test; Welch's does not assume equal
variances), compression, trainable parameters and FLOPs per sample in both counts (2 m'n' and the
paper's 2 sum feat_{l-1} feat_l, docs/method.md Sec. 11). Table 2: per layer 2-6 of the DLRA runs,
input (n'), output (m') and feature dimensions, mean and std over the runs.
"""
import json
import math
from pathlib import Path

import numpy as np

PAPER_TABLE1 = {  # Table 1 of the paper: 20 runs of 2000 epochs each
    "baseline": {"acc": (90.45, 0.21), "p": None, "comp": (0.0, 0.0), "params": "1.40 M", "flops": "2.79 M"},
    "fn": {"acc": (90.51, 0.18), "p": 1.99e-1, "comp": (0.0, 0.0), "params": "1.40 M", "flops": "2.79 M"},
    "dlra": {"acc": (90.65, 0.15), "p": 3.72e-4, "comp": (30.65, 0.97), "params": "0.97 ± 0.01 M",
             "flops": "2.09 ± 0.03 M"},
}
PAPER_TABLE2 = {  # layer: (input avg, std), (output avg, std), (feat avg, std)
    2: ((413.95, 4.92), (414.90, 4.97), (417.00, 4.93)),
    3: ((400.20, 5.07), (401.20, 5.07), (406.15, 5.04)),
    4: ((351.40, 13.83), (351.45, 13.76), (359.30, 14.63)),
    5: ((346.85, 10.01), (347.15, 10.30), (353.45, 10.72)),
    6: ((10.00, 0.00), (10.00, 0.00), (10.00, 0.00)),
}
LAST = 5  # the paper averages the last 5 epochs


def read_metrics(run):
    """The records of `run`/metrics.jsonl (one per finished epoch)."""
    path = Path(run) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def mean_std(values):
    """(mean, sample std) of a list; std is 0 for a single value; (nan, nan) for none."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def welch_p(a, b):
    """Two-sided p-value of Welch's t-test between samples a and b (None with fewer than 2 in either)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def run_stats(records):
    """One run's Table 1 numbers: mean test accuracy of its last 5 epochs and its final size."""
    last = records[-LAST:]
    f = records[-1]
    return {"acc": float(np.mean([r["test_acc"] for r in last])), "comp": f["compression"], "params": f["params"],
            "flops": f["flops_per_sample"], "flops_paper": f.get("flops_paper", f["flops_per_sample"]),
            "epochs": f["epoch"], "layers": f["layers"]}


def table1(runs_by_method):
    """{method: {"n", "acc", "p", "comp", "params", "flops", "flops_paper"}} from {method: [records, ...]}."""
    stats = {m: [run_stats(r) for r in runs if r] for m, runs in runs_by_method.items()}
    base = [s["acc"] for s in stats.get("baseline", [])]
    out = {}
    for m, ss in stats.items():
        if not ss:
            continue
        acc = [s["acc"] for s in ss]
        out[m] = {"n": len(ss), "epochs": min(s["epochs"] for s in ss), "acc": mean_std(acc),
                  "p": None if m == "baseline" else welch_p(acc, base),
                  **{k: mean_std([s[k] for s in ss]) for k in ("comp", "params", "flops", "flops_paper")}}
    return out


def table2(dlra_runs):
    """{layer: {"input": (mean, std), "output": ..., "feat": ...}} for layers 2..L of the final shapes."""
    finals = [run_stats(r)["layers"] for r in dlra_runs if r]
    if not finals:
        return {}
    L = len(finals[0])
    return {l: {"input": mean_std([f[l - 1]["n"] for f in finals]), "output": mean_std([f[l - 1]["m"] for f in finals]),
                "feat": mean_std([f[l - 1]["feat"] for f in finals])} for l in range(2, L + 1)}


def _pm(ms, digits=2, scale=1.0):
    return f"{ms[0] / scale:.{digits}f} ± {ms[1] / scale:.{digits}f}"


def _p(p):
    return "n/a" if p is None else f"{p:.2e}"


def table1_markdown(t, caption):
    names = {"baseline": "Baseline", "fn": "+FN", "dlra": "+DLRA (λ1 = 20)"}
    lines = [caption, "",
             "| method | runs | test acc. (%) | paper | p (Welch) | paper | comp. (%) | paper | params | paper "
             "| FLOPs 2m'n' | FLOPs (paper's count) | paper |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, r in t.items():
        pp = PAPER_TABLE1.get(m.split("-")[0] if m.startswith("dlra") else m, {})
        paper_acc = _pm(pp["acc"]) if pp else ""
        lines.append(f"| {names.get(m, m)} | {r['n']} | {_pm(r['acc'])} | {paper_acc} | {_p(r['p'])} | "
                     f"{_p(pp.get('p')) if pp else ''} | {_pm(r['comp'])} | {_pm(pp['comp']) if pp else ''} | "
                     f"{_pm(r['params'], 3, 1e6)} M | {pp.get('params', '')} | {_pm(r['flops'], 3, 1e6)} M | "
                     f"{_pm(r['flops_paper'], 3, 1e6)} M | {pp.get('flops', '')} |")
    return "\n".join(lines) + "\n"


def table2_markdown(t, caption):
    lines = [caption, "", "| layer | input (ours) | input (paper) | output (ours) | output (paper) | feat. (ours) "
             "| feat. (paper) |", "|---|---|---|---|---|---|---|"]
    for l, r in t.items():
        p = PAPER_TABLE2.get(l)
        cells = [f"{_pm(r[k])} | {_pm(p[i]) if p else ''}" for i, k in enumerate(("input", "output", "feat"))]
        lines.append(f"| {l} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def moving_average(v, w):
    """Trailing moving average of width min(w, len(v)) (the first entries average what exists)."""
    v = np.asarray(v, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(0, i - w)
    return (c[i] - c[lo]) / (i - lo)


def epochs_to_reach(curve, target):
    """The first epoch (1-based) at which `curve` reaches `target`, or None."""
    hit = np.flatnonzero(np.asarray(curve) >= target)
    return int(hit[0]) + 1 if len(hit) else None


def speedup(runs_by_method, window=20):
    """The paper's "7.1x": epochs the baseline needs to reach its best (of the mean test accuracy over
    runs, smoothed with a `window`-epoch moving average) divided by the epochs each method needs to
    reach that value. Returns {"baseline_best": (epoch, acc), method: (epoch or None, ratio or None)}."""
    curves = {}
    for m, runs in runs_by_method.items():
        runs = [r for r in runs if r]
        if runs:
            E = min(len(r) for r in runs)
            curves[m] = moving_average(np.mean([[x["test_acc"] for x in r[:E]] for r in runs], axis=0), window)
    if "baseline" not in curves:
        return {}
    b = curves["baseline"]
    eb = int(np.argmax(b)) + 1
    out = {"baseline_best": (eb, float(b[eb - 1])), "window": window}
    for m, c in curves.items():
        e = epochs_to_reach(c, b[eb - 1])
        out[m] = (e, eb / e if e else None)
    return out
