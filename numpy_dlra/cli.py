"""Command line: ``python -m numpy_dlra train | sweep-rank | compare-ranks ...`` (also ``numpy-dlra``).

- ``train``          one run (baseline, fn or dlra; MLP or CNN; optional fixed-rank last layer);
- ``sweep-rank``     the second seed's rank table and spectral-distance plot;
- ``compare-ranks``  DLRA against SVD truncation and fixed-rank factors at the ranks DLRA found.
Exit status: 0 done, 2 bad input (flags, data files, output folder; the message says which and
what to do), 130 interrupted (rerun to resume).
"""
import argparse
import sys

from .config import ADAM_MERGE, FUSE_RATIOS, METHODS, RARE_AXES, TrainConfig
from .datasets import DATASETS
from .errors import UserError


def _parser():
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="numpy-dlra", description="Dynamic Low-Rank Approximation (Lee et al. 2021) in NumPy")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one network; writes config.json, metrics.jsonl, checkpoint.npz, summary.json")
    t.add_argument("--method", choices=METHODS, default=d.method,
                   help="baseline: the paper's dense MLP; fn: + Frobenius Normalization; dlra: fn + RaRe + fusing")
    t.add_argument("--model", choices=("mlp", "cnn"), default=d.model,
                   help="mlp: the paper's 784-500x5-10 (default); cnn: the second seed's small CNN")
    t.add_argument("--dataset", choices=tuple(DATASETS), default=d.dataset,
                   help="fashion-mnist (default); mnist (falls back to Fashion-MNIST with --data auto); cifar100")
    t.add_argument("--rank", type=int, default=d.rank, help="fixed rank of the last layer, B C (second seed); 0 = dense")
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs to train (default {d.epochs}; paper 2000)")
    t.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size}; paper: not stated)")
    t.add_argument("--seed", type=int, default=d.seed, help="seeds init, shuffling, dropout and noise")
    t.add_argument("--dtype", choices=("float32", "float64"), default=d.dtype)
    t.add_argument("--data", choices=("auto", "full", "embedded"), default=d.data,
                   help="full Fashion-MNIST, the embedded 5000/1000 subset, or auto (full when found)")
    t.add_argument("--out", default=None, help="run folder (default runs/<method>-seed<seed>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--dropout", type=float, default=d.dropout)
    t.add_argument("--grad-noise-eta", type=float, default=d.grad_noise_eta,
                   help=f"gradient-noise variance scale eta (default {d.grad_noise_eta}; paper: not stated; 0 = off)")
    t.add_argument("--lambda1", type=float, default=None, help="RaRe weight, Eq. 18 (default 20 for dlra, as the paper)")
    t.add_argument("--lambda2", type=float, default=None,
                   help="L2 weight, Eq. 17-18 (default 0.1 for dlra, as the paper; 0 otherwise)")
    t.add_argument("--tau-cos", type=float, default=d.tau_cos, help=f"Eq. 13 (default {d.tau_cos}, paper)")
    t.add_argument("--tau-euc", type=float, default=d.tau_euc, help=f"Eq. 13 (default {d.tau_euc}, paper)")
    t.add_argument("--fuse-ratio", choices=FUSE_RATIOS, default=d.fuse_ratio,
                   help="r of Eq. 9: lstsq <w_d,w_k>/<w_k,w_k> (default) or sum, the paper's sum(w_d)/sum(w_k)")
    t.add_argument("--rare-axes", choices=RARE_AXES, default=d.rare_axes,
                   help="all: RaRe on every layer and axis (paper, default); fusable: only the axes that may fuse")
    t.add_argument("--adam-merge", choices=ADAM_MERGE, default=d.adam_merge,
                   help="Adam moments of a merged vector: carry (default) or reset to zero")
    t.add_argument("--search-every", type=int, default=d.search_every,
                   help="1 (default): find the closest pairs from fresh Grams every step (exact); K > 1: every "
                        "K-th step, re-measuring the last pairs in between (an approximation, README 'Speed')")
    t.add_argument("--probe-size", type=int, default=d.probe_size,
                   help="validation images whose logits merges.jsonl compares before/after each merge (0: off)")
    t.add_argument("--init", choices=("he", "glorot"), default=d.init, help="weight initialization (paper: not stated)")
    t.add_argument("--split-seed", type=int, default=d.split_seed, help="seed of the 10 %% validation split")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    w = sub.add_parser("sweep-rank", help="the second seed's table: train the full-rank net and one per rank of the last layer")
    w.add_argument("--model", choices=("mlp", "cnn"), default="cnn")
    w.add_argument("--dataset", choices=tuple(DATASETS), default="mnist",
                   help="mnist (default, as the seed; falls back to Fashion-MNIST when absent), fashion-mnist, cifar100")
    w.add_argument("--data", choices=("auto", "full", "embedded"), default="auto", help="for Fashion-MNIST, as in train")
    w.add_argument("--ranks", default="8,6,4,2,1", help="comma-separated ranks (the seed's: 8,6,4,2,1; CIFAR-100: 75,60,40,20,10,1)")
    w.add_argument("--epochs", type=int, default=10, help="per network (seed: 10)")
    w.add_argument("--batch-size", type=int, default=32, help="(seed: 32)")
    w.add_argument("--grad-noise-eta", type=float, default=0.0, help="(seed: none)")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--out", required=True, help="folder for the runs, table.md, results.json, spectral.png")

    c = sub.add_parser("compare-ranks", help="at the ranks a DLRA run found: DLRA vs SVD truncation (with and without "
                                             "fine-tuning) vs fixed-rank factors from scratch")
    c.add_argument("--dlra", required=True, help="a finished `train --method dlra` run folder")
    c.add_argument("--baseline", required=True, help="a finished `train --method baseline` run folder, same data and epochs")
    c.add_argument("--finetune-epochs", type=int, default=5)
    c.add_argument("--out", required=True, help="folder for the runs, table.md, results.json")
    return p


def _train(args):
    from .train import train

    cfg = TrainConfig(method=args.method, model=args.model, dataset=args.dataset, rank=args.rank,
                      epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, dtype=args.dtype,
                      data=args.data, lr=args.lr, dropout=args.dropout, grad_noise_eta=args.grad_noise_eta,
                      lambda1=args.lambda1, lambda2=args.lambda2, tau_cos=args.tau_cos, tau_euc=args.tau_euc,
                      fuse_ratio=args.fuse_ratio, rare_axes=args.rare_axes, adam_merge=args.adam_merge,
                      search_every=args.search_every, probe_size=args.probe_size, init=args.init,
                      split_seed=args.split_seed)
    out = args.out or f"runs/{cfg.method}-seed{cfg.seed}"
    s = train(cfg, out, resume=args.resume, progress=False if args.no_progress else None)
    f = s["final"]
    print(f"done: {s['dataset']}, {f['epoch']} epochs, test accuracy {f['test_acc']:.2f} %, "
          f"{f['params']:,} parameters ({f['compression']:.2f} % compression), {s['total_seconds']:.0f} s; wrote {out}/")
    return 0


def _sweep(args):
    from .sweep import sweep_rank

    try:
        ranks = [int(r) for r in args.ranks.split(",") if r.strip()]
    except ValueError:
        raise UserError(f"--ranks {args.ranks!r}: give comma-separated integers, e.g. 8,6,4,2,1") from None
    base = TrainConfig(model=args.model, dataset=args.dataset, data=args.data, epochs=args.epochs,
                       batch_size=args.batch_size, grad_noise_eta=args.grad_noise_eta, seed=args.seed)
    for r in ranks:
        TrainConfig(model=args.model, dataset=args.dataset, rank=r)  # every rank checked before any training
    rows = sweep_rank(base, ranks, args.out)
    print(f"done: {len(rows)} networks on {rows[0]['dataset']}; wrote {args.out}/table.md, results.json, spectral.png")
    return 0


def _compare(args):
    from .compare import compare_ranks

    if args.finetune_epochs < 1:
        raise UserError(f"--finetune-epochs {args.finetune_epochs}: must be >= 1")
    rows = compare_ranks(args.dlra, args.baseline, args.out, args.finetune_epochs)
    print(f"done: {len(rows)} models compared; wrote {args.out}/table.md")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "sweep-rank":
            return _sweep(args)
        if args.command == "compare-ranks":
            return _compare(args)
    except UserError as exc:
        print(f"numpy-dlra: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("numpy-dlra: interrupted; the last finished epoch is checkpointed: rerun `train` with --resume, "
              "or the same sweep-rank / compare-ranks command", file=sys.stderr)
        return 130
    return 0
