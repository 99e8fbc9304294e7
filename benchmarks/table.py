"""The speed table: one training epoch of baseline, fn and DLRA at batch 64, 128 and 256, on this machine.

Everything in the table is measured in one run of this script, so its ratios compare like with like:
- the machine, the BLAS threads, and the float32 matmul peak measured at the step's own GEMM shapes
  (the best rate over them, best of several repetitions);
- per batch size: the epoch time (54,000 training images) of baseline, fn and DLRA (exact), each
  one ``train_step`` per batch as in training, every method from the same initialization; the
  baseline's GEMM arithmetic per second and its share of the peak; the time of the step's GEMMs
  alone (the floor of a dense step here); fn and DLRA against the baseline; DLRA against its own
  floor, the baseline epoch plus the 10 Gram matrices Eq. (16) needs every step, timed alone (and
  plus the whole closest-pair phase, Grams and searches, timed alone); the
  approximation ``--search-every 4`` against the baseline; peak resident memory of each run (each
  case runs in its own process); PyTorch's epoch of the same baseline work on the same threads (on a
  GPU: the same device), when PyTorch is installed (pip install torch==2.13.0: CPU build);
- DLRA's step at batch 128 broken into the phases of Algorithm 1.

Usage: python benchmarks/table.py [--batches 64,128,256] [--steps N] [--reps R] [--device cpu|cuda] [--out FILE]
  --steps N times N steps per case and scales to an epoch (0: the whole epoch; default 200); the
  cases run R times (default 3), interleaved (baseline, fn, dlra, ..., baseline, fn, ...), and each
  case's fastest run is kept, so that a machine whose speed drifts (shared VMs do, by 30 %) shows
  less in the ratios.
The table is printed and written to FILE (default benchmarks/results/<host>-<threads>t-<device>.md).
"""
import argparse
import json
import math
import os
import platform
import resource
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
from numpy_dlra.nn.backend import device_name, device_rng, module_for, synchronize  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402

N_TRAIN = 54_000
SIZES = (784, 500, 500, 500, 500, 500, 10)
CASES = {"baseline": {}, "fn": {}, "dlra": {}, "dlra-search4": {"search_every": 4}}
WARMUP_GPU = 20  # untimed steps before a GPU case (CuPy compiles a kernel at its first launch)


def threads():
    return int(os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count())


def load(xp):
    """(x, y, what): the full training split on `xp` if prepared here, else random data of its shape."""
    try:
        from numpy_dlra.data.datasets import load_dataset

        d = load_dataset("full", log=lambda m: None)
        x, y, what = d.x_train.astype(np.float32), d.y_train, "the Fashion-MNIST training split"
    except Exception:  # noqa: BLE001 - not prepared: the cost does not depend on the values
        g = np.random.default_rng(0)
        x, y, what = g.random((N_TRAIN, 784), dtype=np.float32), g.integers(0, 10, N_TRAIN), "random data"
    return xp.asarray(x), xp.asarray(y), what


def run_case(name, batch, steps, device):
    """Time `steps` train_steps of case `name` at `batch`, in this process; returns a dict."""
    xp = module_for(device)
    x, y, _ = load(xp)
    method = "dlra" if name.startswith("dlra") else name
    cfg = TrainConfig(method=method, batch_size=batch, device=device, **CASES[name])
    rngs = make_rngs(0)
    model, params = build_model(cfg, rng=rngs["init"], xp=xp)
    if xp is not np:
        rngs |= {"dropout": device_rng(xp, 0, 2, 1), "noise": device_rng(xp, 0, 3, 1)}
    pairs = ClosestPairs(model, FusionRules.from_config(cfg)) if method == "dlra" else None
    if pairs:
        pairs.refresh(params)
    opt = Adam()
    state = opt.init(params)
    probe = x[:256] if pairs else None
    perm = xp.asarray(rngs["shuffle"].permutation(len(x)))
    parts = dict.fromkeys(PHASES, 0.0)
    merges = 0
    for s in range(WARMUP_GPU if xp is not np else 0):  # a GPU compiles each kernel at its first use
        train_step(model, params, opt, state, x[perm[:batch]], y[perm[:batch]], cfg, rngs, pairs, probe)
    synchronize(xp)
    t0 = time.perf_counter()
    for s in range(steps):
        i = (s * batch) % (len(x) - batch + 1)
        idx = perm[i:i + batch]
        merges += len(train_step(model, params, opt, state, x[idx], y[idx], cfg, rngs, pairs, probe, clock=parts).merges)
    synchronize(xp)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if xp is not np:
        rss = xp.get_default_memory_pool().total_bytes() / 2**20
    return {"seconds": seconds, "parts": parts, "merges": merges, "peak_mib": rss}


def case_in_child(name, batch, steps, device):
    """run_case in a fresh process (so that its peak memory is its own)."""
    out = subprocess.run([sys.executable, __file__, "--case", f"{name}:{batch}", "--steps", str(steps),
                          "--device", device], capture_output=True, text=True, env=os.environ)
    if out.returncode:
        raise SystemExit(f"case {name}:{batch} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_time(f, reps=5, inner=10, xp=np):
    best = math.inf
    for _ in range(reps):
        synchronize(xp)
        t0 = time.perf_counter()
        for _ in range(inner):
            f()
        synchronize(xp)
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def gemm_shapes(batch):
    """The GEMMs of one baseline step as (M, K, N) products (M, K) @ (K, N): forward X W^T, backward
    dY^T X (weight gradients) and dY W (input gradients, not for the first layer)."""
    L = len(SIZES) - 1
    fwd = [(batch, SIZES[l - 1], SIZES[l]) for l in range(1, L + 1)]
    gw = [(SIZES[l], batch, SIZES[l - 1]) for l in range(1, L + 1)]
    dx = [(batch, SIZES[l], SIZES[l - 1]) for l in range(2, L + 1)]
    return fwd + gw + dx


def gemm_rates(batch, xp):
    """(peak GFLOP/s over the step's shapes, seconds of all the step's GEMMs alone, FLOPs per step)."""
    g = np.random.default_rng(0)
    mats = [(xp.asarray(g.random((M, K), dtype=np.float32)), xp.asarray(g.random((K, N), dtype=np.float32)))
            for M, K, N in gemm_shapes(batch)]
    times = [best_time(lambda a=a, b=b: a @ b, xp=xp) for a, b in mats]
    flops = [2 * M * K * N for M, K, N in gemm_shapes(batch)]
    peak = max(f / t for f, t in zip(flops, times)) / 1e9
    return peak, sum(times), sum(flops)


def gram_seconds(xp):
    """One step's Grams of Eq. (16) at the initial shapes, timed alone: W'^T W' and W' W'^T per layer
    (the classifier's rows too, as the trainer computes them), as the trainer forms them (syrk)."""
    g = np.random.default_rng(0)
    Ws = [xp.asarray(g.random((SIZES[l], SIZES[l - 1]), dtype=np.float32)) for l in range(1, len(SIZES))]

    def grams():
        for W in Ws:
            W.T @ W
            W @ W.T

    return best_time(grams, reps=3, inner=3, xp=xp)


def refresh_seconds(xp):
    """The trainer's whole phase 5 at the initial shapes, timed alone: ``ClosestPairs.refresh``, i.e. the
    Grams plus the 16 closest-pair searches over them (and the rows-with-bias Grams built from them)."""
    cfg = TrainConfig(method="dlra")
    model, params = build_model(cfg, rng=np.random.default_rng(0), xp=xp)
    pairs = ClosestPairs(model, FusionRules.from_config(cfg))
    return best_time(lambda: pairs.refresh(params), reps=3, inner=3, xp=xp)


def torch_epoch(batch, n_threads, steps, device="cpu", noise=True):
    """PyTorch doing the baseline's work (dropout, cross-entropy, gradient noise unless `noise` is False, Adam)
    on `device`, in eager mode with its default Adam (on a GPU: its multi-tensor "foreach" kernels); returns
    (seconds for `steps` steps, PyTorch's version), or None if absent."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(n_threads)
    dev = torch.device(device)
    layers = []
    for i in range(5):
        layers += [torch.nn.Linear(SIZES[i], 500), torch.nn.ReLU(), torch.nn.Dropout(0.2)]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(500, 10)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    g = np.random.default_rng(0)
    xt = torch.from_numpy(g.random((N_TRAIN, 784), dtype=np.float32)).to(dev)
    yt = torch.from_numpy(g.integers(0, 10, N_TRAIN)).to(dev)
    perm = torch.randperm(N_TRAIN).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for s in range(-(WARMUP_GPU if dev.type == "cuda" else 0), steps):
        if s == 0:
            sync()
            t0 = time.perf_counter()
        i = (max(s, 0) * batch) % (N_TRAIN - batch + 1)
        idx = perm[i:i + batch]
        opt.zero_grad(set_to_none=False)
        loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
        loss.backward()
        if noise:
            sigma = (1e-4 / (1 + max(s, 0)) ** 0.55) ** 0.5
            with torch.no_grad():
                for p in net.parameters():
                    p.grad.add_(torch.randn_like(p.grad), alpha=sigma)
        opt.step()
    sync()
    return time.perf_counter() - t0, torch.__version__


def torch_available(device):
    try:
        import torch
    except ImportError:
        return False
    return device == "cpu" or torch.cuda.is_available()


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="64,128,256")
    ap.add_argument("--steps", type=int, default=200, help="steps timed per case (0: a whole epoch)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions; the fastest of each case is kept")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--out", default="")
    ap.add_argument("--case", default="", help=argparse.SUPPRESS)  # internal: NAME:BATCH in a child process
    a = ap.parse_args(argv)
    if a.case:
        name, batch = a.case.split(":")
        print(json.dumps(run_case(name, int(batch), a.steps, a.device)))
        return
    xp = module_for(a.device)
    n_thr = threads()
    what = load(np)[2]
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {n_thr} BLAS threads" if xp is np else device_name(xp)
    lines = [f"# Epoch timings ({a.device}, {n_thr} host threads)", "", f"Machine: {machine}; numpy {np.__version__}, Python {platform.python_version()}; data: {what}; "
             f"float32; {time.strftime('%Y-%m-%d')}. Command: python benchmarks/table.py "
             f"{' '.join(argv if argv is not None else sys.argv[1:])}. Each case: {a.steps or 'an epoch of'} steps "
             f"scaled to an epoch, the fastest of {a.reps} interleaved runs.", ""]
    head = ("| batch | steps/epoch | matmul peak (GFLOP/s) | GEMMs alone (s/epoch) | baseline (s/epoch) | GFLOP/s | "
            "% of peak | PyTorch (s/epoch) | baseline / PyTorch | fn / baseline | DLRA (s/epoch) | DLRA / baseline | "
            "DLRA / (baseline + Grams) | DLRA / (baseline + Grams and searches) | search-every 4 / baseline | "
            + ("peak RSS MiB" if xp is np else "GPU memory MiB, CuPy's pool") + " (base, fn, DLRA) |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    grams, refresh = gram_seconds(xp), refresh_seconds(xp)
    breakdown = None
    for batch in [int(b) for b in a.batches.split(",")]:
        per_epoch = math.ceil(N_TRAIN / batch)
        steps = a.steps or per_epoch
        scale = per_epoch / steps
        peak, gemm_s, flops = gemm_rates(batch, xp)
        runs = [{name: case_in_child(name, batch, steps, a.device) for name in CASES} for _ in range(a.reps)]
        r = {name: min((run[name] for run in runs), key=lambda c: c["seconds"]) for name in CASES}
        ep = {k: v["seconds"] * scale for k, v in r.items()}
        base = ep["baseline"]
        rate = flops * per_epoch / base / 1e9
        tr = min((torch_epoch(batch, n_thr, steps, a.device) for _ in range(a.reps)), key=lambda t: t[0]) \
            if torch_available(a.device) else None
        t_torch = tr[0] * scale if tr else None
        floor = base + grams * per_epoch
        floor2 = base + refresh * per_epoch
        lines.append(
            f"| {batch} | {per_epoch} | {peak:.0f} | {gemm_s * per_epoch:.2f} | {base:.2f} | {rate:.0f} | "
            f"{100 * rate / peak:.0f} | {f'{t_torch:.2f}' if tr else 'n/a'} | {f'{base / t_torch:.2f}' if tr else 'n/a'} | "
            f"{ep['fn'] / base:.2f} | {ep['dlra']:.2f} | {ep['dlra'] / base:.2f} | {ep['dlra'] / floor:.2f} | {ep['dlra'] / floor2:.2f} | "
            f"{ep['dlra-search4'] / base:.2f} | {r['baseline']['peak_mib']:.0f}, {r['fn']['peak_mib']:.0f}, "
            f"{r['dlra']['peak_mib']:.0f} |")
        print(lines[-1], flush=True)
        if batch == 128 or breakdown is None:
            breakdown = (batch, r["dlra"], steps)
    b, d, steps = breakdown
    lines += ["", f"The 10 Grams of a step alone: {1e3 * grams:.2f} ms; with the closest-pair searches (the whole of "
              f"phase 5, `ClosestPairs.refresh`): {1e3 * refresh:.2f} ms. DLRA's step at batch {b} by phase "
              f"({d['merges']} merges in {steps} steps):", "", "| phase | ms/step | share |", "|---|---|---|"]
    lines += [f"| {k} | {1e3 * v / steps:.2f} | {100 * v / d['seconds']:.1f} % |" for k, v in d["parts"].items()]
    if tr:
        where = f"{n_thr} threads" if xp is np else "the same GPU, eager mode"
        lines += ["", f"PyTorch {tr[1]} on {where}, random data of the same shape."]
    if xp is not np:
        lines += ["", f"Every GPU case ran {WARMUP_GPU} untimed steps first (CuPy and PyTorch compile kernels at "
                  "their first use); each phase above is timed to the device's completion (a synchronize per phase)."]
    text = "\n".join(lines) + "\n"
    out = Path(a.out or ROOT / "benchmarks" / "results" / f"{platform.node()}-{n_thr}t-{a.device}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
