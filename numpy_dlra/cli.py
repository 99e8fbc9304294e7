"""Command line: ``numpy-dlra train | sweep-rank | compare-ranks ...`` (also ``python -m numpy_dlra``).

- ``train``          one run (baseline, fn or dlra; MLP or CNN; optional fixed-rank layers);
- ``sweep-rank``     the fixed-rank baseline's rank table and spectral-distance plot;
- ``compare-ranks``  DLRA against SVD truncation and fixed-rank factors at the ranks DLRA found;
- ``reproduce``      the paper's Tables 1-2 and Figures 1-4 over many seeds, locally or on Dask.
- ``controls``       DLRA against smaller networks of its sizes (from scratch, pruned, SVD-truncated);
- ``export``         the trained network as a plain dense MLP of the reduced widths (.npz);
- ``analyze``        Markdown tables drawn from run folders (arms side by side, merge trends, per-axis gaps).
The flags of ``train`` (and the run settings of ``sweep-rank``) are built from the fields of
:class:`numpy_dlra.experiments.config.TrainConfig`: its defaults, help and choices.
Exit status: 0 done, 2 bad input (flags, data files, output folder; the message says which and
what to do), 130 interrupted (rerun to resume).
"""
import argparse
import dataclasses
import sys

from .errors import UserError
from .experiments.config import TrainConfig, flag, is_own

CONFIG_FIELDS = [f.name for f in dataclasses.fields(TrainConfig) if f.metadata["flag"]]  # the rest come from the data
# sweep-rank trains the report's CNN on MNIST, batch 32, no gradient noise (Sainath et al.'s setting)
# reproduce sets these itself (per run); every other TrainConfig field is a flag that applies to all runs
REPRODUCE_OWN = ("method", "seed", "epochs", "lambda1", "tau_cos", "tau_euc")
SWEEP_DEFAULTS = {"model": "cnn", "dataset": "mnist", "data": "auto", "epochs": 10, "batch_size": 32,
                  "grad_noise_eta": 0.0, "seed": 0}


def add_config_flags(parser, names=CONFIG_FIELDS, defaults=None):
    """One flag per TrainConfig field in `names`, with the field's help, choices and default (or `defaults`')."""
    defaults = defaults or {}
    for f in dataclasses.fields(TrainConfig):
        if f.name not in names:
            continue
        md, default = f.metadata, defaults.get(f.name, f.default)
        kw = {"default": default, "dest": f.name, "help": md["help"].replace("%", "%%")}
        if default not in (None, "", ()):
            kw["help"] += f" (default: {default})"
        if md["choices"]:
            kw["choices"] = md["choices"]
        else:
            kw["type"] = md["type"] or type(f.default)
            kw["metavar"] = f.name.upper()
        parser.add_argument(flag(f.name), **kw)


def config_from(args, names=CONFIG_FIELDS, **overrides):
    """The TrainConfig of parsed flags (raises ConfigError, a UserError, for invalid values)."""
    return TrainConfig(**{n: getattr(args, n) for n in names if n in vars(args)} | overrides)


class _Parser(argparse.ArgumentParser):
    """Bad flags: the one-line error and where the help is, not the usage first (about 20 lines for train)."""

    def error(self, message):
        sub = next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is not None and message == f"the following arguments are required: {sub.metavar or sub.dest}":
            message = f"which {sub.dest}? one of: {', '.join(sub.choices)}"
        self.exit(2, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


def _parser():
    p = _Parser(prog="numpy-dlra", description="Dynamic Low-Rank Approximation (Lee et al. 2021) in NumPy")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one network; writes config.json, metrics.jsonl, checkpoint.npz, summary.json")
    add_config_flags(t)
    t.add_argument("--out", default=None, help="run folder (default runs/<method>-seed<seed>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    w = sub.add_parser("sweep-rank", help="the fixed-rank baseline's table: train the full-rank net and one per "
                                          "rank of the last layer")
    add_config_flags(w, tuple(SWEEP_DEFAULTS), SWEEP_DEFAULTS)
    w.add_argument("--ranks", default="8,6,4,2,1",
                   help="comma-separated ranks (the report's: 8,6,4,2,1; CIFAR-100: 75,60,40,20,10,1)")
    w.add_argument("--out", required=True, help="folder for the runs, table.md, results.json, spectral.png")

    r = sub.add_parser("reproduce", help="the paper's Tables 1-2 and Figures 1-4 over many seeds (trains what is "
                                         "missing, skips finished runs, resumes interrupted ones)")
    r.add_argument("what", choices=("table1", "table2", "fig1", "fig2", "fig3", "fig4"))
    r.add_argument("--epochs", type=int, default=2000, help="epochs per run (default: the paper's 2000)")
    r.add_argument("--seeds", default="20", help="a count (seeds 0..S-1) or a comma-separated list (default: the paper's 20)")
    r.add_argument("--methods", default="baseline,fn,dlra",
                   help="which of baseline, fn, dlra to train and tabulate (default: all three, as Table 1)")
    r.add_argument("--jobs", type=int, default=1, help="runs at once on this machine, each with cores/jobs threads")
    r.add_argument("--scheduler", default=None, help="a Dask scheduler ADDRESS (tcp://host:8786) to send the runs to")
    r.add_argument("--tau-grid", default="1e-5,1e-4,1e-3x0.05,0.1,0.2",
                   help="fig2: TAU_COS values x TAU_EUC values (default 1e-5,1e-4,1e-3x0.05,0.1,0.2)")
    r.add_argument("--lambda1-values", default="1,10,20,40", help="fig3: the lambda1 values (default: the paper's 1,10,20,40)")
    r.add_argument("--out", required=True, help="folder for runs/, the tables and the figures")
    r.add_argument("--no-train", action="store_true", help="train nothing: draw the table or figure from the runs "
                                                          "already finished in --out (each row says how many)")
    add_config_flags(r, [n for n in CONFIG_FIELDS if n not in REPRODUCE_OWN], {n: None for n in CONFIG_FIELDS})

    c = sub.add_parser("compare-ranks", help="at the ranks a DLRA run found: DLRA vs SVD truncation (with and without "
                                             "fine-tuning) vs fixed-rank factors from scratch")
    c.add_argument("--dlra", required=True, help="a finished `train --method dlra` run folder")
    c.add_argument("--baseline", required=True, help="a finished `train --method baseline` run folder, same data and epochs")
    c.add_argument("--finetune-epochs", type=int, default=5)
    c.add_argument("--out", required=True, help="folder for the runs, table.md, results.json")

    e = sub.add_parser("export", help="the trained network of a run as a plain dense MLP (or CNN) of the reduced widths "
                                      "(.npz): FN, P, Q and the feature groups folded in")
    e.add_argument("run", metavar="RUN", help="a `numpy-dlra train` run folder (--model mlp or cnn; baseline, fn or dlra)")
    e.add_argument("--out", required=True, help="the .npz file to write (W1..WL, b1..bL, sizes, meta; a CNN: K1, K2, "
                                                "W3, W4 and the biases)")
    e.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="of the arrays (default: float32)")
    e.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    e.add_argument("--channel-maps", action="store_true", help="a DLRA CNN with channel columns: keep each connector as "
                   "a 1 x 1 map (M2, M3) before its kernel, so that merged input channels shrink the file too "
                   "(numpy_dlra.experiments.export.cnn_forward runs it)")

    k = sub.add_parser("controls", help="DLRA against smaller networks at its sizes (exported, W'): trained from "
                                        "scratch, pruned or SVD-truncated from the baseline (as is and fine-tuned)")
    k.add_argument("--dlra", required=True, help="a finished `train --method dlra` run folder")
    k.add_argument("--baseline", required=True, help="the finished dense baseline run of the same data, sizes and seed")
    k.add_argument("--finetune-epochs", type=int, default=10)
    k.add_argument("--no-train", action="store_true", help="train nothing: measure the as-is arms, list the runs")
    k.add_argument("--arms", default="all", help="which trained arms to train, comma-separated (scratch-dense, "
                   "scratch-fn, scratch-uniform, scratch-lowrank, pruned-l1-finetuned, svd-finetuned; default: all); "
                   "the as-is arms are always measured")
    k.add_argument("--out", required=True, help="folder for the runs, the pruned and truncated .npz, results.json")

    a = sub.add_parser("analyze", help="Markdown tables drawn from run folders, finished or not (reads them, "
                                       "trains nothing)")
    at = a.add_subparsers(dest="table", required=True, metavar="TABLE")
    x = at.add_parser("arms", help="arms of runs side by side against the first: accuracy, Welch p, size, merges, "
                                   "epoch reaching the first arm's best")
    x.add_argument("specs", nargs="+", metavar="LABEL=GLOB", help="an arm: a label and a (quoted) glob of run folders")
    x.add_argument("--at-epoch", type=int, default=None, metavar="E", help="cut every run to its first E epochs "
                   "(shorter runs are left out; default: each arm's finished runs, those as long as its longest)")
    x = at.add_parser("curve", help="compression and test accuracy against epochs, arm by arm")
    x.add_argument("specs", nargs="+", metavar="LABEL=GLOB", help="an arm: a label and a (quoted) glob of run folders")
    x.add_argument("--every", type=int, default=10, metavar="K", help="one row per K epochs (default 10)")
    x.add_argument("--at-epoch", type=int, default=None, metavar="E", help="cut every run to its first E epochs")
    x = at.add_parser("merge-trend", help="merges per epoch per layer and axis over windows of epochs, and what "
                                          "Table 2's shapes still need")
    x.add_argument("folders", nargs="+", metavar="RUN", help="dlra run folders")
    x.add_argument("--window", type=int, default=20, help="epochs per window (default 20)")
    x = at.add_parser("layers", help="per arm and layer: the final shapes, features and W' entries against the dense "
                                     "layer (compression per layer, mean ± std over the runs)")
    x.add_argument("specs", nargs="+", metavar="LABEL=GLOB", help="an arm: a label and a (quoted) glob of run folders")
    x.add_argument("--at-epoch", type=int, default=None, metavar="E", help="cut every run to its first E epochs")
    x = at.add_parser("runs", help="one row per run: accuracy, size, per-layer shapes")
    x.add_argument("folders", nargs="+", metavar="RUN", help="run folders")
    x = at.add_parser("readings", help="the reading arms of `reproduce table1 ... --out DIR/ARM` side by side")
    x.add_argument("directory", metavar="DIR", help="the folder holding the arms (l2-w, l2-effective, base, ...)")
    x = at.add_parser("controls", help="the controls of several seeds (`numpy-dlra controls` folders): accuracy "
                                       "and parameters per arm, Welch p of DLRA against each")
    x.add_argument("directories", nargs="+", metavar="DIR", help="folders written by `numpy-dlra controls`")
    x.add_argument("--plot", default=None, metavar="FILE", help="also draw accuracy against parameters to FILE")
    x = at.add_parser("axes", help="per epoch, each layer and axis's merges and closest gap (metrics.jsonl's axes)")
    x.add_argument("folder", metavar="RUN", help="a dlra run folder")
    x.add_argument("--every", type=int, default=1, metavar="K", help="one row per K epochs (default 1)")
    return p


def _train(args):
    from .experiments.train import train

    cfg = config_from(args)
    out = args.out or f"runs/{cfg.method}-seed{cfg.seed}"
    s = train(cfg, out, resume=args.resume, progress=False if args.no_progress else None)
    f = s["final"]
    merges = f", {s['merges_total']} merges in all" if cfg.method == "dlra" else ""
    print(f"done: {s['dataset']}, {f['epoch']} epochs, test accuracy {f['test_acc']:.2f} %, "
          f"{f['params']:,} parameters ({f['compression']:.2f} % compression){merges}, {s['total_seconds']:.0f} s; "
          f"wrote {out}/")
    return 0


def _sweep(args):
    from .experiments.sweep import sweep_rank

    try:
        ranks = [int(r) for r in args.ranks.split(",") if r.strip()]
    except ValueError:
        raise UserError(f"--ranks {args.ranks!r}: give comma-separated integers, e.g. 8,6,4,2,1") from None
    if is_own(args.data) and args.dataset == SWEEP_DEFAULTS["dataset"]:  # the default dataset gives way to your file
        args.dataset = "own"
    base = config_from(args, tuple(SWEEP_DEFAULTS))
    for r in ranks:  # every rank checked before any training
        dataclasses.replace(base, rank=r)
    rows = sweep_rank(base, ranks, args.out)
    print(f"done: {len(rows)} networks on {rows[0]['dataset']}; wrote {args.out}/table.md, results.json, spectral.png")
    return 0


def _compare(args):
    from .experiments.compare import compare_ranks

    if args.finetune_epochs < 1:
        raise UserError(f"--finetune-epochs {args.finetune_epochs}: must be >= 1")
    rows = compare_ranks(args.dlra, args.baseline, args.out, args.finetune_epochs)
    print(f"done: {len(rows)} models compared; wrote {args.out}/table.md")
    return 0


def _floats(flag_name, text):
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{flag_name} {text!r}: give comma-separated numbers") from None


def _reproduce(args):
    from pathlib import Path

    from .experiments.reproduce import parse_seeds, reproduce

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be >= 1")
    settings = {n: getattr(args, n) for n in CONFIG_FIELDS if n not in REPRODUCE_OWN and getattr(args, n) is not None}
    settings["epochs"] = args.epochs
    TrainConfig(**settings)  # every setting checked before any training
    if args.what == "fig3" and not _floats("--lambda1-values", args.lambda1_values):
        raise UserError(f"--lambda1-values {args.lambda1_values!r}: give at least one value, e.g. 1,10,20,40")
    cos, _, euc = args.tau_grid.partition("x")
    grid = (_floats("--tau-grid", cos), _floats("--tau-grid", euc))
    if not grid[0] or not grid[1]:
        raise UserError(f"--tau-grid {args.tau_grid!r}: give TAU_COS values x TAU_EUC values, e.g. 1e-4,1e-3x0.1,0.2")
    methods = tuple(m for m in args.methods.split(",") if m.strip())
    if not methods or set(methods) - {"baseline", "fn", "dlra"} or (args.what in ("table2", "fig4") and "dlra" not in methods):
        raise UserError(f"--methods {args.methods!r}: give some of baseline,fn,dlra (table2 and fig4 need dlra)")
    text = reproduce(args.what, settings, parse_seeds(args.seeds), Path(args.out), args.jobs, args.scheduler,
                     grid=grid, lambdas=_floats("--lambda1-values", args.lambda1_values), methods=methods,
                     train=not args.no_train)
    print(text, end="")
    return 0


def _controls(args):
    from .experiments.controls import controls

    if args.finetune_epochs < 1:
        raise UserError(f"--finetune-epochs {args.finetune_epochs}: must be >= 1")
    r = controls(args.dlra, args.baseline, args.out, args.finetune_epochs, train=not args.no_train,
                 arms_to_train=None if args.arms == "all" else tuple(a for a in args.arms.split(",") if a.strip()))
    print(f"done: {len(r['arms'])} controls of {args.dlra}; wrote {args.out}/results.json "
          f"(table: numpy-dlra analyze controls {args.out} ...)")
    return 0


def _export(args):
    from .experiments.export import export_run

    meta = export_run(args.run, args.out, args.dtype, args.force, channel_maps=args.channel_maps)
    c = meta["params"]
    print(f"exported {args.run} (epoch {meta['epoch']}, {meta['method']}) as a plain {meta['model'].upper()} "
          f"{'-'.join(map(str, meta['sizes']))}"
          f"{' with 1 x 1 channel maps ' + ', '.join(meta['channel_maps']) if meta.get('channel_maps') else ''} to {args.out} ({meta['dtype']}; inputs scaled {meta['input_scaling']})")
    print(f"parameters: dense original {c['dense']:,}; exported {c['exported']:,} "
          f"({100 * (1 - c['exported'] / c['dense']):.1f} % fewer); factorized W' (the paper's count) "
          f"{c['factorized']:,} ({100 * (1 - c['factorized'] / c['dense']):.1f} % fewer)")
    return 0


def _analyze(args):
    from .experiments import analyze

    if args.table == "arms":
        analyze.arms(args.specs, args.at_epoch)
    elif args.table == "curve":
        analyze.curve(args.specs, args.every, args.at_epoch)
    elif args.table == "merge-trend":
        analyze.merge_trend(args.folders, args.window)
    elif args.table == "runs":
        analyze.runs_table(args.folders)
    elif args.table == "layers":
        analyze.layers(args.specs, args.at_epoch)
    elif args.table == "controls":
        from .experiments.controls import table

        table(args.directories, plot=args.plot)
    elif args.table == "readings":
        analyze.readings_table(args.directory)
    else:
        analyze.axes(args.folder, args.every)
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
        if args.command == "reproduce":
            return _reproduce(args)
        if args.command == "controls":
            return _controls(args)
        if args.command == "export":
            return _export(args)
        if args.command == "analyze":
            return _analyze(args)
    except UserError as exc:
        print(f"numpy-dlra: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("numpy-dlra: interrupted; the last finished epoch is checkpointed: rerun the same `train` command "
              "with --resume (the same flags; only --epochs may change), or rerun the same reproduce / sweep-rank / "
              "compare-ranks / controls command", file=sys.stderr)
        return 130
    return 0
