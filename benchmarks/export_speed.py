"""Is the compressed network faster? Inference of the dense original, the factorized P FN(W') Q form as
training runs it, and the exported plain MLP (``numpy-dlra export``), timed side by side in one run.

Timing depends only on the widths, so the networks are built from the final per-layer shapes that the
committed 100-epoch DLRA runs recorded in metrics.jsonl (m', n' and the reduced feature count G of every
layer; the checkpoints are not committed): for each run, a FactorizedMLP whose P and Q have exactly those
shapes and feature groups (random indices and scales, both signs), and its export. Weights are random;
the arithmetic is the same as for the trained ones.

For each network, float32, eval mode, batch 1 and 128, 1 and 2 BLAS threads (each thread count in its own
process, started by this script): the median latency over repeats (interleaved, so that a drift of the
machine hits all three forms alike), the forward FLOPs (2 per weight of the GEMMs: 2 m n, 2 m' n' and
2 G_l G_{l-1}), and the ratios. The goal (issue 23): at batch 128 the exported network's speed-up over the
dense one is at least 0.8x its FLOP ratio. Also per layer, at batch 128, where the exported network spends
its time.

Usage: python benchmarks/export_speed.py [--out benchmarks/results/export-speed.md] [--repeats 200]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from numpy_dlra.dlra.layer import LayerFactors  # noqa: E402
from numpy_dlra.dlra.network import FactorizedMLP  # noqa: E402
from numpy_dlra.experiments.export import forward as plain_forward  # noqa: E402
from numpy_dlra.models.mlp import PAPER_SIZES, init_params  # noqa: E402

ARMS = {"paper's settings (L2 on W')": "full-e100-rows", "no L2": "full-e100-rows-nol2",
        "decoupled L2": "full-e100-rows-decoupled"}


def final_layers(arm, seed):
    """metrics.jsonl's last record's layers (m', n', feat) of results/ARM/dlra-seedS, and its W' count."""
    last = (ROOT / "results" / arm / f"dlra-seed{seed}" / "metrics.jsonl").read_text().splitlines()[-1]
    rec = json.loads(last)
    return rec["layers"], rec["params"], rec["epoch"]


def factors_with_shapes(g, m, m_prime, G, n, n_prime):
    """P (m x m') with G feature groups (the m' rows positive, G - m' of them also negative) and Q (n' x n)
    onto n' columns: one nonzero per row of P and column of Q, random magnitudes, as merges leave them."""
    groups = [(k, 1.0) for k in range(m_prime)] + [(k, -1.0) for k in range(G - m_prime)]
    assert len(groups) <= m
    picks = list(range(len(groups))) + list(g.integers(0, len(groups), m - len(groups)))
    picks = g.permutation(picks)
    p_idx = np.array([groups[i][0] for i in picks])
    p_scale = np.array([groups[i][1] for i in picks]) * g.uniform(0.5, 1.5, m)
    q_idx = g.permutation(np.concatenate([np.arange(n_prime), g.integers(0, n_prime, n - n_prime)]))
    return LayerFactors(p_idx, p_scale, q_idx, g.uniform(0.5, 1.5, n) * g.choice([-1.0, 1.0], n))


def networks(layers, seed=0):
    """(dense plain MLP, factorized model and params, exported plain MLP), float32, for the recorded shapes."""
    g = np.random.default_rng(seed)
    sizes = PAPER_SIZES
    dense = init_params(sizes, g, np.float32)
    model, params = FactorizedMLP.from_dense(dense, sizes, 0.2, fn=True)
    for l, d in enumerate(layers, start=1):
        G = d["feat"] if l < len(layers) else d["m"]
        model.layers[l - 1].factors = factors_with_shapes(g, sizes[l], d["m"], G, sizes[l - 1], d["n"])
        params[f"W{l}"] = (g.standard_normal((d["m"], d["n"])) / np.sqrt(d["n"])).astype(np.float32)
        params[f"b{l}"] = np.zeros(d["m"], np.float32)
    model.rebuild()
    assert [(s["m"], s["n"], s["feat"]) for s in model.layer_stats()] == [(d["m"], d["n"], d["feat"]) for d in layers]
    exported = {k: v.astype(np.float32) for k, v in model.export(params).items()}
    return dense, (model, params), exported


def flops(plain):
    return 2 * sum(v.size for k, v in plain.items() if k.startswith("W"))


def median_latency(fns, x, repeats):
    """{name: median seconds} of each fn(x), the calls interleaved."""
    times = {k: [] for k in fns}
    for f in fns.values():  # warm-up
        f(x)
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f(x)
            times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def per_layer(plain, x, repeats):
    """Median seconds of each layer's GEMM + bias (+ ReLU) of a plain MLP at the batch of x."""
    L = len(plain) // 2
    hs = [x]
    for l in range(1, L + 1):
        h = hs[-1] @ plain[f"W{l}"].T + plain[f"b{l}"]
        hs.append(np.maximum(h, 0) if l < L else h)
    out = []
    for l in range(1, L + 1):
        W, b, h = plain[f"W{l}"], plain[f"b{l}"], hs[l - 1]
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            y = h @ W.T + b
            if l < L:
                np.maximum(y, 0, out=y)
            ts.append(time.perf_counter() - t)
        out.append(float(np.median(ts)))
    return out


def measure(repeats):
    """One process, one thread count (set by the caller's environment): every network, both batches."""
    rows = []
    x_all = np.random.default_rng(1).uniform(0, 1, (128, 784)).astype(np.float32)
    for label, arm in ARMS.items():
        for seed in range(3):
            layers, wprime, epoch = final_layers(arm, seed)
            dense, (model, params), exported = networks(layers, seed)
            for batch in (1, 128):
                x = x_all[:batch]
                lat = median_latency({"dense": lambda v: plain_forward(dense, v),
                                      "factorized": lambda v: model.forward(params, v)[0],
                                      "exported": lambda v: plain_forward(exported, v)}, x, repeats)
                rows.append({"arm": label, "seed": seed, "epoch": epoch, "batch": batch, "latency": lat,
                             "widths": [784] + [d["feat"] for d in layers[:-1]] + [10],
                             "params": {"dense": sum(v.size for v in dense.values()), "factorized": wprime,
                                        "exported": sum(v.size for v in exported.values())},
                             "flops": {"dense": flops(dense), "factorized": model.flops_per_sample(),
                                       "exported": flops(exported)},
                             "layers_ms": ({"dense": per_layer(dense, x, repeats), "exported": per_layer(exported, x,
                                                                                                          repeats)}
                                           if batch == 128 else None)})
    return rows


def report(by_threads, repeats):
    lines = [f"# Inference: dense, factorized and exported (`python benchmarks/export_speed.py --repeats {repeats}`)",
             "",
             f"Machine: {platform.node() or '?'} ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), "
             f"NumPy {np.__version__}, float32, eval mode; median of {repeats} interleaved calls per form. Networks: the "
             "final per-layer shapes of the committed 100-epoch DLRA runs (results/full-e100-rows*/dlra-seed*/"
             "metrics.jsonl), random weights. Speed-up = dense latency / form's latency; FLOP ratio = dense FLOPs / "
             "form's FLOPs; efficiency = speed-up / FLOP ratio (the goal: >= 0.8 for the exported net at batch 128).",
             ""]
    for threads, rows in by_threads.items():
        lines += [f"## {threads} BLAS thread{'s' if threads > 1 else ''}", "",
                  "| arm | seed | batch | exported widths | params dense / exported / W' | dense (ms) | factorized (ms) | "
                  "exported (ms) | FLOP ratio exported | speed-up exported | efficiency | speed-up factorized |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lat, fl, p = r["latency"], r["flops"], r["params"]
            ratio = fl["dense"] / fl["exported"]
            sp = lat["dense"] / lat["exported"]
            lines.append(f"| {r['arm']} | {r['seed']} | {r['batch']} | {'-'.join(map(str, r['widths']))} | "
                         f"{p['dense']:,} / {p['exported']:,} / {p['factorized']:,} | {lat['dense'] * 1e3:.3f} | "
                         f"{lat['factorized'] * 1e3:.3f} | {lat['exported'] * 1e3:.3f} | {ratio:.2f} | {sp:.2f} | "
                         f"{sp / ratio:.2f} | {lat['dense'] / lat['factorized']:.2f} |")
        lines.append("")
        lines += ["Per layer at batch 128 (ms, GEMM + bias + ReLU; the exported net's, then the dense net's):", "",
                  "| arm | seed | exported: layer 1 .. 6 | dense: layer 1 .. 6 | layer 1's share of the exported net |",
                  "|---|---|---|---|---|"]
        for r in rows:
            if r["layers_ms"]:
                e, d = r["layers_ms"]["exported"], r["layers_ms"]["dense"]
                lines.append(f"| {r['arm']} | {r['seed']} | {' '.join(f'{t * 1e3:.3f}' for t in e)} | "
                             f"{' '.join(f'{t * 1e3:.3f}' for t in d)} | {100 * e[0] / sum(e):.0f} % |")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="also write the Markdown report to this file")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.repeats)))
        return
    by_threads = {}
    for threads in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
        r = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(args.repeats)], env=env,
                           capture_output=True, text=True, check=True)
        by_threads[threads] = json.loads(r.stdout)
    text = report(by_threads, args.repeats)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
