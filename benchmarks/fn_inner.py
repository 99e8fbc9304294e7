"""FN's <dY, W'> from the smaller side: fn's step with the dot over W' against the dot over z W'^T, in one run.

Eq. (15)'s backward needs <dY, W'> (m' x n'); <dY, W'> = <du^T z, W'> = <du, z W'^T> (B x m'). ``ops.FNLinear``
keeps z W'^T from its forward pass when B < n' (every layer of the MLP at batch 128) and dots that. This times
``train_step`` of fn (and DLRA with --dlra) both ways, interleaved in one process: "over W'" replaces the forward
with the form before (u scaled in place, no z W'^T kept), so backward falls back to the dot over W'.

Usage: OMP_NUM_THREADS=2 python benchmarks/fn_inner.py [--steps 40] [--reps 12] [--dlra]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from table import cpu_name, load, threads  # noqa: E402

from numpy_dlra.dlra import ops  # noqa: E402
from numpy_dlra.dlra.algorithm1 import train_step  # noqa: E402
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules  # noqa: E402
from numpy_dlra.experiments.build import build_model  # noqa: E402
from numpy_dlra.experiments.config import TrainConfig  # noqa: E402
from numpy_dlra.experiments.train import make_rngs  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402

SMALL = ops.FNLinear.forward  # the library's: keeps z W'^T when it is the smaller side


def over_w(self, params, z, *, training=False, rng=None):
    """FNLinear.forward as it was: u scaled in place, no z W'^T kept, so backward dots c dY with W'."""
    W, b = params["W"], params["b"]
    u = z @ W.T  # (B, n') @ (n', m') -> (B, m')
    c = f2 = None
    if self.k is not None:
        f2 = ops.sq_norm(W)
        c = self.k * float(params["g"][0]) / f2**0.5
        u *= u.dtype.type(c)
    u += b
    return u, (z, W, params.get("g"), c, f2, None)


class Case:
    def __init__(self, method, x, y):
        self.cfg, self.rngs, self.x, self.y, self.s = TrainConfig(method=method, batch_size=128), make_rngs(0), x, y, 0
        self.model, self.params = build_model(self.cfg, rng=self.rngs["init"])
        self.pairs = ClosestPairs(self.model, FusionRules.from_config(self.cfg)) if method == "dlra" else None
        if self.pairs:
            self.pairs.refresh(self.params)
        self.opt = Adam()
        self.state = self.opt.init(self.params)
        self.perm = self.rngs["shuffle"].permutation(len(x))

    def run(self, steps):
        """(seconds a step, seconds of forward+backward a step)."""
        clock, t = {}, time.perf_counter()
        for _ in range(steps):
            i = (self.s * 128) % (len(self.x) - 128 + 1)
            idx = self.perm[i:i + 128]
            train_step(self.model, self.params, self.opt, self.state, self.x[idx], self.y[idx], self.cfg, self.rngs,
                       self.pairs, None, clock=clock)
            self.s += 1
        return (time.perf_counter() - t) / steps, clock["forward+backward"] / steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=12)
    ap.add_argument("--dlra", action="store_true", help="DLRA too")
    args = ap.parse_args(argv)
    x, y, what = load(np)
    forms = {"over W'": over_w, "over z W'^T": SMALL}
    cases = {(m, f): Case(m, x, y) for m in ("fn", "dlra")[: 1 + args.dlra] for f in forms}
    best = {k: (float("inf"), float("inf")) for k in cases}
    for rep in range(args.reps + 1):  # the first round warms up and is not kept
        for (m, f), c in cases.items():
            ops.FNLinear.forward = forms[f]
            step, fb = c.run(args.steps)
            if rep:
                best[(m, f)] = (min(best[(m, f)][0], step), min(best[(m, f)][1], fb))
    ops.FNLinear.forward = SMALL
    print(f"# FN's <dY, W'> from the smaller side (`python benchmarks/fn_inner.py --steps {args.steps} --reps "
          f"{args.reps}{' --dlra' if args.dlra else ''}`)\n\n{cpu_name()}, {threads()} BLAS threads, NumPy "
          f"{np.__version__}, float32, batch 128, {what}; fastest of {args.reps} interleaved repetitions.\n")
    print("| method | <dY, W'> | forward+backward (ms) | whole step (ms) |\n|---|---|---|---|")
    for (m, f), (step, fb) in best.items():
        print(f"| {m} | {f} | {1e3 * fb:.2f} | {1e3 * step:.2f} |")


if __name__ == "__main__":
    main()
