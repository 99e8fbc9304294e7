"""One training step of the seed report's CNN: baseline, fn and DLRA under the four convolution readings, in one run.

The CNN is conv 32 3x3 - conv 32 3x3 - max pool 2x2 - dense 256 - dense 10 on Fashion-MNIST's 28 x 28 x 1 images
(:class:`numpy_dlra.models.cnn.CNN`; fn and DLRA hold it as :class:`numpy_dlra.dlra.conv_network.FactorizedCNN`),
float32, batch 32, without gradient noise: the step of ``numpy-dlra train --model cnn --batch-size 32
--grad-noise-eta 0 --method M``, every method with the command line's other defaults (fn: no L2; DLRA: lambda1 20,
lambda2 0.1 on W', the paper's Eq. 13 thresholds). Each step is :func:`numpy_dlra.dlra.algorithm1.train_step`,
the one the trainer runs, with its ``clock``, so every case also gives its step by phase. The cases:

- baseline, fn;
- DLRA under each reading of a kernel (``--conv-columns``, ``--conv-axes``): channel + longer (the default),
  channel + both, coord + longer, coord + both.

For each DLRA reading, "its Grams" are the Gram products its pair search computes in one step, timed alone at the
same shapes: for every layer l and kind in ``ClosestPairs.kinds(l)``, V^T V with V = ``layer.view(W', "cols")`` for
the columns and W' W'^T for the rows (the rows-with-bias Gram is built from the rows Gram, as ``_gram`` does);
"its Grams and searches", the whole of phase 5 (``ClosestPairs.refresh``) timed alone. Ratios: fn / baseline,
DLRA / baseline, DLRA / (baseline + its Grams), DLRA / (baseline + its Grams and searches).

The inputs are random of the right shape (the time of a step does not depend on the values), every case starts
from the same initialization (seed 0), runs --warmup untimed steps, then --steps timed ones. The cases run --reps
times, interleaved (baseline, fn, dlra..., baseline, fn, ...), and each case's fastest repetition is kept, as in
benchmarks/table.py (this machine's speed drifts). Merges change the shapes of W' and so the cost of a step; they
are rare at initialization, and each case reports how many happened in its timed steps and W''s shapes after them;
``--no-merges`` sets Eq. (13)'s thresholds so small that no pair passes (the test still runs).

The measurement runs in a child process whose BLAS threads are pinned through OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS (set before it imports NumPy; threadpoolctl is not a dependency), as in
benchmarks/export_speed.py.

Usage: python benchmarks/cnn_step.py [--steps 30] [--warmup 5] [--reps 3] [--threads N] [--no-merges] [--out FILE.md]
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

from numpy_dlra.dlra.algorithm1 import PHASES, train_step  # noqa: E402
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules  # noqa: E402
from numpy_dlra.experiments.build import build_model  # noqa: E402
from numpy_dlra.experiments.config import TrainConfig  # noqa: E402
from numpy_dlra.experiments.train import make_rngs  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402
from table import cpu_name  # noqa: E402  (benchmarks/table.py, beside this script)

BATCH = 32
READINGS = (("channel", "longer"), ("channel", "both"), ("coord", "longer"), ("coord", "both"))
CASES = {"baseline": ("baseline", None), "fn": ("fn", None)} | {f"dlra {c}+{a}": ("dlra", (c, a)) for c, a in READINGS}
N_POOL = 1024  # random examples the batches cycle through
NO_MERGE_TAU = 1e-30  # --no-merges: Eq. (13)'s thresholds, met by no pair of nonzero vectors


def threads():
    return int(os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count())




def config(name, no_merges):
    """The TrainConfig of case `name`: ``--model cnn --batch-size 32 --grad-noise-eta 0`` and the case's flags."""
    method, reading = CASES[name]
    extra = {} if reading is None else {"conv_columns": reading[0], "conv_axes": reading[1]}
    if method == "dlra" and no_merges:
        extra |= {"tau_cos": NO_MERGE_TAU, "tau_euc": NO_MERGE_TAU}
    return TrainConfig(method=method, model="cnn", batch_size=BATCH, grad_noise_eta=0.0, dtype="float32", **extra)


def shapes(model):
    return [list(model.shape(l)) for l in range(1, model.n_layers + 1)]


def mean_time(f, n):
    """Mean seconds of f() over n calls, after one untimed call."""
    f()
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n


def gram_products(pairs, params):
    """A function computing, alone, the Grams that pairs.refresh computes at the model's current shapes."""
    work = []
    for l in range(1, pairs.model.n_layers + 1):
        kinds = pairs.kinds(l)
        layer = pairs.model.layers[l - 1]
        W = params[layer.keys["W"]]
        if "cols" in kinds:
            work.append(layer.view(W, "cols"))
        if "rows" in kinds or "rows+b" in kinds:  # "rows+b" adds b b^T to the rows Gram: no second product
            work.append(W.T)

    def grams():
        for V in work:
            V.T @ V  # syrk: V^T V (n', n') for the columns, W' W'^T (m', m') for the rows

    return grams, [list(V.shape) for V in work]


def run_case(name, x, y, steps, warmup, no_merges):
    """Time `steps` train_steps of case `name` after `warmup` untimed ones; returns a dict."""
    cfg = config(name, no_merges)
    rngs = make_rngs(0)
    model, params = build_model(cfg, rng=rngs["init"])
    pairs = ClosestPairs(model, FusionRules.from_config(cfg)) if cfg.method == "dlra" else None
    if pairs:
        pairs.refresh(params)
    opt = Adam(lr=cfg.lr, beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.eps)
    state = opt.init(params)
    probe = x[:cfg.probe_size] if pairs and cfg.probe_size else None
    before = shapes(model) if pairs else None
    n_batches = len(x) // BATCH
    warm_merges = 0
    for s in range(warmup):
        i = (s % n_batches) * BATCH
        warm_merges += len(train_step(model, params, opt, state, x[i:i + BATCH], y[i:i + BATCH], cfg, rngs, pairs,
                                      probe).merges)
    parts = dict.fromkeys(PHASES, 0.0)
    merges = 0
    t0 = time.perf_counter()
    for s in range(warmup, warmup + steps):
        i = (s % n_batches) * BATCH
        merges += len(train_step(model, params, opt, state, x[i:i + BATCH], y[i:i + BATCH], cfg, rngs, pairs, probe,
                                 clock=parts).merges)
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "parts": parts, "merges": merges, "warmup_merges": warm_merges}
    if pairs:  # the Grams and the whole pair search, alone, at the shapes the timed steps ended with
        grams, gram_shapes = gram_products(pairs, params)
        n = max(steps, 5)
        out |= {"shapes_before": before, "shapes_after": shapes(model), "gram_shapes": gram_shapes,
                "grams": mean_time(grams, n), "refresh": mean_time(lambda: pairs.refresh(params), n)}
    return out


def measure(steps, warmup, reps, no_merges):
    """Every case, `reps` times interleaved; each case's fastest repetition."""
    g = np.random.default_rng(0)
    x = g.random((N_POOL, 28 * 28), dtype=np.float32)
    y = g.integers(0, 10, N_POOL)
    runs = [{name: run_case(name, x, y, steps, warmup, no_merges) for name in CASES} for _ in range(reps)]
    return {name: min((r[name] for r in runs), key=lambda c: c["seconds"]) for name in CASES}


def report(r, a, n_thr, command):
    ms = {k: 1e3 * v["seconds"] / a.steps for k, v in r.items()}
    base = ms["baseline"]
    thr = f"{n_thr} BLAS thread{'s' if n_thr > 1 else ''}"
    lines = [f"# One training step of the CNN (cpu, {thr})", "",
             f"Machine: {platform.node() or '?'}, {cpu_name()}, {os.cpu_count()} cores, {thr}; numpy "
             f"{np.__version__}, Python {platform.python_version()}; float32; {time.strftime('%Y-%m-%d')}. Command: "
             f"{command}. The step of `numpy-dlra train --model cnn --batch-size {BATCH} --grad-noise-eta 0 --method M` "
             f"(28 x 28 x 1 images, widths 32, 32, 256, random inputs); each case: {a.warmup} untimed steps, then "
             f"{a.steps} timed, from the same initialization; the fastest of {a.reps} interleaved repetitions."
             + (f" `--no-merges`: Eq. (13)'s thresholds {NO_MERGE_TAU:g}, no pair fuses." if a.no_merges else ""), "",
             "| case | ms/step | / baseline | its Grams alone (ms) | / (baseline + Grams) | Grams and searches alone "
             "(ms) | / (baseline + Grams and searches) | merges (warm-up, timed) | W' shapes (m', columns) after |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, v in r.items():
        if "grams" in v:
            gr, rf = 1e3 * v["grams"], 1e3 * v["refresh"]
            extra = (f"{gr:.2f} | {ms[k] / (base + gr):.2f} | {rf:.2f} | {ms[k] / (base + rf):.2f} | "
                     f"{v['warmup_merges']}, {v['merges']} | {' '.join('x'.join(map(str, s)) for s in v['shapes_after'])}")
        else:
            extra = "- | - | - | - | - | -"
        lines.append(f"| {k} | {ms[k]:.2f} | {ms[k] / base:.2f} | {extra} |")
    lines += ["", "By phase (ms/step, and share of the step; Algorithm 1's phases as train_step's clock measures them):",
              "", "| phase | " + " | ".join(r) + " |", "|---|" + "---|" * len(r)]
    for p in PHASES:
        lines.append(f"| {p} | " + " | ".join(f"{1e3 * v['parts'][p] / a.steps:.2f} ({100 * v['parts'][p] / v['seconds']:.0f} %)"
                                              for v in r.values()) + " |")
    lines.append("| total | " + " | ".join(f"{ms[k]:.2f}" for k in r) + " |")
    lines += ["", "The Gram products each DLRA reading computes per step, as the shapes of V in V^T V (by layer: the columns' "
              "V = layer.view(W', \"cols\"), then the rows' V = W'^T):", ""]
    for k, v in r.items():
        if "gram_shapes" in v:
            lines.append(f"- {k}: " + ", ".join("x".join(map(str, s)) for s in v["gram_shapes"]))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per case")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before each case's timed ones")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions; the fastest of each case is kept")
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: OMP_NUM_THREADS, else all cores)")
    ap.add_argument("--no-merges", action="store_true", help="Eq. (13) admits no pair: the shapes stay fixed")
    ap.add_argument("--out", default="", help="also write the Markdown report to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.steps < 1 or a.warmup < 0 or a.reps < 1:
        ap.error("--steps and --reps must be >= 1, --warmup >= 0")
    if a.child:
        print(json.dumps(measure(a.steps, a.warmup, a.reps, a.no_merges)))
        return
    n_thr = a.threads or threads()
    env = dict(os.environ, OMP_NUM_THREADS=str(n_thr), OPENBLAS_NUM_THREADS=str(n_thr), MKL_NUM_THREADS=str(n_thr))
    child = [sys.executable, __file__, "--child", "--steps", str(a.steps), "--warmup", str(a.warmup), "--reps",
             str(a.reps)] + (["--no-merges"] if a.no_merges else [])
    out = subprocess.run(child, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the measurement failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    command = "python benchmarks/cnn_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(r, a, n_thr, command.strip())
    print(text)
    if a.out:
        path = Path(a.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        print(f"written to {path}")


if __name__ == "__main__":
    main()
