"""How fast can pure NumPy draw the gradient noise? The library's two streams against the alternatives issue 27 names.

The paper's step adds N(0, sigma_t^2) noise to all 1.4 M gradients (Neelakantan et al.). The library draws it
by Box-Muller, in one of two streams (``--grad-noise-stream``, defined in ``nn.optim.gradient_noise``): "uniform"
on ``Generator.random``'s float32 uniforms (the stream before issue 27), and "raw", the default, on the bit
generator's 64-bit words, sigma folded into the radius. Timed here, per draw, float32, in one run:

- each stream as a step adds it (``nn.fast.add_gradient_noise`` on the paper's 12 gradient arrays), alone and
  right after GEMMs of the step's shapes on the BLAS threads (as in training, after the backward pass);
- the uniform stream's draws alone (PCG64, Box-Muller on float32 uniforms, blocked);
- the uniforms alone (what Box-Muller's transcendentals add on top), and NumPy's ziggurat normal;
- the same Box-Muller on other bit generators (SFC64, Philox), and each generator's raw 64-bit words alone (the
  bits' floor of the raw stream);
- Box-Muller on the generator's raw 64-bit words (two 24-bit uniforms per word: fewer random bits per normal),
  blocked as the current stream is;
- a counter-based stream, one generator per (step, block) so that blocks are independent, drawn on 1 and on 2
  Python threads (NumPy's ufuncs release the GIL; the question is whether two cores help), alone and after GEMMs.

Usage: python benchmarks/noise_draws.py [--n 1399510] [--repeats 10]
"""
import argparse
import math
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from table import cpu_name  # noqa: E402

from numpy_dlra.nn.fast import DRAW_BLOCK, add_gradient_noise, standard_normal  # noqa: E402

SHAPES = [(500, 784), (500,)] + [(500, 500), (500,)] * 4 + [(10, 500), (10,)]  # the paper's network's gradients


def box_muller_raw(gen, k, out):
    """k draws of N(0, 1) into out[:k] from k/2 raw 64-bit words: u1, u2 are the words' two 24-bit halves."""
    h = (k + 1) // 2
    v = gen.random_raw(h).view(np.uint32)  # (2h,): each word's low and high 32 bits
    rho = (v[0::2] >> np.uint32(8)).astype(np.float32)
    rho += np.float32(0.5)  # (0, 2^24): the log is finite
    rho *= np.float32(2.0**-24)
    theta = (v[1::2] >> np.uint32(8)).astype(np.float32)
    theta *= np.float32(2.0**-24 * 2 * math.pi)
    np.log(rho, out=rho)
    rho *= np.float32(-2)
    np.sqrt(rho, out=rho)
    np.cos(theta[: k - h], out=out[h:k])
    out[h:k] *= rho[: k - h]
    np.sin(theta, out=theta)
    np.multiply(rho, theta, out=out[:h])


def raw_blocked(gen, n, out):
    for s in range(0, n, DRAW_BLOCK):
        box_muller_raw(gen, min(DRAW_BLOCK, n - s), out[s:])


def counter_based(seed, step, n, out, pool=None):
    """Block b of step t from its own generator, PCG64(SeedSequence(seed, spawn_key=(t, b))): no state to carry."""
    def block(b):
        s = b * DRAW_BLOCK
        box_muller_raw(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(step, b))),
                       min(DRAW_BLOCK, n - s), out[s:])
    blocks = range((n + DRAW_BLOCK - 1) // DRAW_BLOCK)
    if pool is None:
        for b in blocks:
            block(b)
    else:
        list(pool.map(block, blocks))


def blas_threads():
    return os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or str(os.cpu_count())


def ns_timed(timed, n, repeats):
    """Like ns_per_draw for a function that times its own part and returns the seconds."""
    timed()
    return sum(timed() for _ in range(repeats)) / repeats / n * 1e9


def ns_per_draw(f, n, repeats):
    f()
    t = time.perf_counter()
    for _ in range(repeats):
        f()
    return (time.perf_counter() - t) / repeats / n * 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_399_510, help="draws per step (the paper's network: 1,399,510)")
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    n, r = a.n, a.repeats
    out = np.empty(n, np.float32)
    rows = []
    grads = {f"g{i}": np.ones(s, np.float32) for i, s in enumerate(SHAPES)}
    n_step = sum(g.size for g in grads.values())
    x, w = np.ones((128, 784), np.float32), np.ones((784, 500), np.float32)

    def after_gemms(f):  # five (128, 784) @ (784, 500) products on the BLAS threads, then f: timed is f alone
        def timed():
            for _ in range(5):
                x @ w
            t = time.perf_counter()
            f()
            return time.perf_counter() - t
        return timed

    for stream in ("uniform", "raw"):
        g = np.random.default_rng(0)
        step = lambda: add_gradient_noise(grads, 5, 1e-4, g, stream=stream)  # noqa: E731
        rows.append((f"a step's noise, stream {stream} (add_gradient_noise, 12 arrays)", ns_per_draw(step, n_step, r)))
        rows.append((f"the same right after GEMMs on {blas_threads()} BLAS threads",
                     ns_timed(after_gemms(step), n_step, r)))
    for name, bg in (("PCG64", np.random.PCG64), ("SFC64", np.random.SFC64), ("Philox", np.random.Philox)):
        g = np.random.Generator(bg(0))
        rows.append((f"{name}: the uniform stream's draws (Box-Muller on Generator.random float32, blocked)",
                     ns_per_draw(lambda: standard_normal(g, n, np.float32), n, r)))
        rows.append((f"{name}: the uniforms alone (Generator.random float32)",
                     ns_per_draw(lambda: g.random(n, dtype=np.float32), n, r)))
        rows.append((f"{name}: NumPy's ziggurat (Generator.standard_normal float32)",
                     ns_per_draw(lambda: g.standard_normal(n, dtype=np.float32), n, r)))
        rows.append((f"{name}: Box-Muller on raw 64-bit words, blocked",
                     ns_per_draw(lambda: raw_blocked(g.bit_generator, n, out), n, r)))
        rows.append((f"{name}: the raw 64-bit words alone (bit_generator.random_raw, one word per two draws)",
                     ns_per_draw(lambda: g.bit_generator.random_raw((n + 1) // 2), n, r)))
    rows.append(("counter-based blocks (a generator per step and block), 1 thread",
                 ns_per_draw(lambda: counter_based(0, 5, n, out), n, r)))
    with ThreadPoolExecutor(2) as pool:
        two = lambda: counter_based(0, 5, n, out, pool)  # noqa: E731
        rows.append(("counter-based blocks, 2 threads", ns_per_draw(two, n, r)))
        rows.append((f"counter-based blocks, 2 threads, right after GEMMs on {blas_threads()} BLAS threads",
                     ns_timed(after_gemms(two), n, r)))
    print(f"# Drawing N(0, 1) in pure NumPy (`python benchmarks/noise_draws.py --n {n} --repeats {r}`)\n")
    print(f"{platform.node() or '?'} ({cpu_name()}, {os.cpu_count()} cores), NumPy {np.__version__}, float32, "
          f"{n:,} draws (one step of the paper's network), mean of {r} repeats after one warm-up; every draw on one "
          "thread but the 2-thread rows.\n")
    base = rows[0][1]
    print("| what | ns per draw | against the uniform stream's step |\n|---|---|---|")
    for what, ns in rows:
        print(f"| {what} | {ns:.2f} | {ns / base:.2f}x |")


if __name__ == "__main__":
    main()
