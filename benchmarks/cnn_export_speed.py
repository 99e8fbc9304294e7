"""Is the exported CNN faster? Inference of the narrower plain CNN that ``numpy-dlra export`` writes for a DLRA run
of ``--model cnn``, against the dense CNN it was trained from, timed side by side in one run.

The exported network of a :class:`numpy_dlra.dlra.conv_network.FactorizedCNN` is a plain
:class:`numpy_dlra.models.cnn.CNN` whose widths are the reduced channel and unit counts G1, G2, G3
(``FactorizedCNN.exported_model``): conv 3x3 (C -> G1) - conv 3x3 (G1 -> G2) - max pool 2x2 - dense G3 - dense classes.
Timing depends only on these shapes, so both networks get random weights (``CNN.init_params``), float32, and both
run ``CNN.forward`` in eval mode. The widths come from the command line (``--widths G1,G2,G3``, repeated for several
networks, against ``--dense``, default the seed report's 32,32,256, on ``--input-shape``) or from run folders
(``--runs GLOB``): the last record of metrics.jsonl, whose "layers" list holds, for a FactorizedCNN, the three
convolution-held layers first with "feat" = G1, G2, G3; the dense CNN, the input shape and the classes are the
run's config.json (``cnn_widths``, ``input_shape``, the last of ``sizes``). A baseline CNN run (no convolution
layers in its record) is timed against itself.

For each network, batch 1 and 128 (``--batches``), each thread count of ``--threads`` (default 1) in its own process
started by this script: the mean latency over --repeats calls (interleaved, dense then exported, so that a drift of
the machine hits both alike; one untimed call each first), and the median too; the forward FLOPs per example
(``CNN.flops_per_sample``: 2 per multiply-add of the convolutions and dense layers) and the parameter counts
(``CNN.param_count``); speed-up = dense latency / exported latency; efficiency = speed-up / FLOP ratio.

Usage: python benchmarks/cnn_export_speed.py (--widths G1,G2,G3 ... | --runs GLOB ...) [--dense 32,32,256]
       [--input-shape 28,28,1] [--classes 10] [--batches 1,128] [--threads 1] [--repeats 200] [--out FILE.md]
"""
import argparse
import glob
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

from numpy_dlra.models.cnn import CNN  # noqa: E402


def ints(text):
    try:
        out = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated integers") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1")
    return out


def widths3(text):
    w = ints(text)
    if len(w) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give three widths f1,f2,hidden")
    return w


def from_run(folder):
    """(label, input_shape, classes, dense widths, exported widths) of a run folder of ``--model cnn``."""
    folder = Path(folder)
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    rec = json.loads([ln for ln in lines if ln.strip()][-1])
    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
    if cfg and cfg.get("model", "cnn") != "cnn":
        raise SystemExit(f"{folder}: a run of --model {cfg['model']}, not of the CNN")
    layers = rec["layers"]
    dense = tuple(cfg.get("cnn_widths") or (32, 32, 256))
    convs = [d for d in layers if "kernel" in d]
    if len(convs) >= 3:  # a FactorizedCNN: layers 1-3 are held as convolutions, "feat" their G
        exported = tuple(int(d["feat"]) for d in layers[:3])
    elif not convs and cfg.get("method", "baseline") == "baseline":
        exported = dense  # the baseline CNN is its own export
    else:
        raise SystemExit(f"{folder}: its last metrics record has no G1, G2, G3 (layers: {layers})")
    input_shape = tuple(cfg.get("input_shape") or (28, 28, 1))
    classes = int(cfg["sizes"][-1]) if cfg.get("sizes") else 10
    return f"{folder} (epoch {rec.get('epoch', '?')})", input_shape, classes, dense, exported


def networks(a):
    """The networks to time: [(label, input_shape, classes, dense widths, exported widths)]."""
    nets = [(f"--widths {','.join(map(str, w))}", a.input_shape, a.classes, a.dense, w) for w in a.widths or ()]
    for pattern in a.runs or ():
        files = pattern if pattern.endswith("metrics.jsonl") else str(Path(pattern) / "metrics.jsonl")
        folders = sorted(p.parent for p in map(Path, glob.glob(files)))
        if not folders:
            raise SystemExit(f"--runs {pattern}: no run folder (with a metrics.jsonl) matches")
        nets += [from_run(f) for f in folders]
    return nets


def latencies(fns, x, repeats):
    """{name: (mean seconds, median seconds)} of each fn(x), the calls interleaved, after one untimed call each."""
    times = {k: [] for k in fns}
    for f in fns.values():  # warm-up
        f(x)
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f(x)
            times[k].append(time.perf_counter() - t)
    return {k: (float(np.mean(v)), float(np.median(v))) for k, v in times.items()}


def measure(nets, batches, repeats):
    """One process, one thread count (set by the caller's environment): every network, every batch."""
    rows = []
    for n, (label, shape, classes, dw, ew) in enumerate(nets):
        g = np.random.default_rng(n)
        dense, exported = CNN(tuple(shape), classes, widths=tuple(dw)), CNN(tuple(shape), classes, widths=tuple(ew))
        pd, pe = dense.init_params(g, np.float32), exported.init_params(g, np.float32)
        x_all = g.uniform(0, 1, (max(batches), int(np.prod(shape)))).astype(np.float32)
        for batch in batches:
            x = x_all[:batch]
            lat = latencies({"dense": lambda v: dense.forward(pd, v)[0],
                             "exported": lambda v: exported.forward(pe, v)[0]}, x, repeats)
            rows.append({"network": label, "input_shape": list(shape), "batch": batch, "latency": lat,
                         "widths": {"dense": list(dw), "exported": list(ew)},
                         "params": {"dense": dense.param_count(), "exported": exported.param_count()},
                         "flops": {"dense": dense.flops_per_sample(), "exported": exported.flops_per_sample()}})
    return rows


def report(by_threads, a, command):
    lines = [f"# Inference: the dense CNN and the exported CNN (`{command}`)", "",
             f"Machine: {platform.node() or '?'} ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), "
             f"NumPy {np.__version__}, float32, eval mode, `CNN.forward` for both; mean (and median) of {a.repeats} "
             "interleaved calls per network after one untimed call. Random weights (timing depends only on the widths). "
             "Speed-up = dense latency / exported latency; FLOP ratio = dense FLOPs / exported FLOPs "
             "(CNN.flops_per_sample); parameter ratio = dense parameters / exported parameters; efficiency = speed-up / "
             "FLOP ratio.", ""]
    for threads, rows in by_threads.items():
        lines += [f"## {threads} BLAS thread{'s' if threads > 1 else ''}", "",
                  "| network | input | batch | widths dense -> exported | params dense / exported | parameter ratio | "
                  "FLOPs/example dense / exported | FLOP ratio | dense (ms) | exported (ms) | speed-up | efficiency | "
                  "speed-up (medians) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            (dm, dmed), (em, emed) = r["latency"]["dense"], r["latency"]["exported"]
            p, fl, w = r["params"], r["flops"], r["widths"]
            ratio, sp = fl["dense"] / fl["exported"], dm / em
            lines.append(f"| {r['network']} | {'x'.join(map(str, r['input_shape']))} | {r['batch']} | "
                         f"{'-'.join(map(str, w['dense']))} -> {'-'.join(map(str, w['exported']))} | "
                         f"{p['dense']:,} / {p['exported']:,} | {p['dense'] / p['exported']:.2f} | "
                         f"{fl['dense']:,} / {fl['exported']:,} | {ratio:.2f} | {dm * 1e3:.3f} | {em * 1e3:.3f} | "
                         f"{sp:.2f} | {sp / ratio:.2f} | {dmed / emed:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=widths3, action="append", metavar="G1,G2,G3",
                    help="an exported CNN's widths (repeat for several networks)")
    ap.add_argument("--runs", action="append", metavar="GLOB",
                    help="run folders of --model cnn (a glob; repeatable): their last metrics.jsonl record's widths")
    ap.add_argument("--dense", type=widths3, default=(32, 32, 256), help="the dense CNN of --widths (default 32,32,256)")
    ap.add_argument("--input-shape", type=ints, default=(28, 28, 1), help="H,W,C of --widths (default 28,28,1)")
    ap.add_argument("--classes", type=int, default=10, help="classes of --widths (default 10)")
    ap.add_argument("--batches", type=ints, default=(1, 128))
    ap.add_argument("--threads", type=ints, default=(1,), help="BLAS thread counts, each in its own process (default 1)")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--out", default=None, help="also write the Markdown report to this file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: the networks as JSON
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(measure(json.loads(a.child), a.batches, a.repeats)))
        return
    if not a.widths and not a.runs:
        ap.error("give --widths G1,G2,G3 or --runs GLOB (or both)")
    if len(a.input_shape) != 3 or a.repeats < 1:
        ap.error("--input-shape takes H,W,C; --repeats must be >= 1")
    nets = networks(a)
    by_threads = {}
    for threads in a.threads:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
        r = subprocess.run([sys.executable, __file__, "--child", json.dumps(nets), "--repeats", str(a.repeats),
                            "--batches", ",".join(map(str, a.batches))], env=env, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"the measurement on {threads} thread(s) failed:\n{r.stderr}")
        by_threads[threads] = json.loads(r.stdout.strip().splitlines()[-1])
    command = "python benchmarks/cnn_export_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(by_threads, a, command.strip())
    print(text)
    if a.out:
        path = Path(a.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(f"written to {path}")


if __name__ == "__main__":
    main()
