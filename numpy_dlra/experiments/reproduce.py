"""``numpy-dlra reproduce table1|table2|fig1|fig2|fig3|fig4``: the paper's experiments over many seeds.

table1, table2, fig1 and fig4 share the runs baseline, fn and dlra (lambda1 = 20) for each seed;
fig2 adds dlra runs over a tau_cos x tau_euc grid, fig3 over lambda1. Left out, epochs and seeds
are the paper's (2000, 20). Every run is a folder under ``DIR/runs`` (:mod:`.runner`): rerunning a
command trains only what is missing, so a figure is redrawn without retraining. Outputs (written
atomically into DIR): ``table1.md`` / ``.json``, ``table2.md`` / ``.json``, ``fig1.png`` ... ``fig4.png``
(and ``fig2.json``, ``fig3.json``).
"""
import json
import math
import os
import platform

from .. import faults
from ..data.fetch import atomic_write_bytes
from ..errors import UserError
from . import figures, tables
from .config import METHODS, TrainConfig
from .run_folder import RunFolder
from .runner import finished_runs, run_all

PAPER_EPOCHS, PAPER_SEEDS = 2000, 20
FIG2_GRID = ((1e-5, 1e-4, 1e-3), (0.05, 0.1, 0.2))  # tau_cos x tau_euc (the paper's values are not printed)
FIG3_LAMBDA1 = (1.0, 10.0, 20.0, 40.0)  # the paper's Fig. 3 (10.41, 27.22, 30.65, 34.22 % compression)


def parse_seeds(text):
    """'20' -> 0..19; '3,5,8' -> those seeds."""
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()] if "," in str(text) else list(range(int(text)))
    except ValueError:
        raise UserError(f"--seeds {text!r}: give a count (20) or a comma-separated list (0,3,5)") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: give at least one seed, none negative, none twice")
    return seeds


def _runs(settings, seeds, methods=METHODS, **extra):
    """[(name, cfg, variant)] for each method and seed. `settings` are the TrainConfig fields common to all
    runs; `extra` (tau_cos, lambda1, ...) makes a dlra variant, named by the values that differ from dlra's
    defaults (so the default variant is the one "dlra" run of its seed)."""
    out = []
    for m in methods:
        for s in seeds:
            cfg = TrainConfig(method=m, seed=s, **settings, **(extra if m == "dlra" else {}))
            ref = TrainConfig(method=m, seed=s, **settings)
            shown = {k: v for k, v in extra.items() if m == "dlra" and getattr(cfg, k) != getattr(ref, k)}
            tag = "".join(f"-{k.replace('_', '')}{v:.12g}" for k, v in sorted(shown.items()))
            out.append((f"{m}{tag}-seed{s}", cfg, tuple(sorted(extra.items())) if m == "dlra" else ()))
    return out


def _caption(settings, seeds, recs, what, dataset):
    cfg = TrainConfig(**settings)
    n = min((len(r) for r in recs if r), default=0)
    shown = f"{seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))
    per = f"{len(seeds)} runs per method" if all(recs) else "the runs column counts each method's finished runs"
    return (f"{what}: {n} of the paper's 2000 epochs, seeds {shown} ({per}), "
            f"{dataset}, batch {cfg.batch_size}, on {platform.node() or 'this machine'} ({os.cpu_count()} cores). "
            f"Test accuracy: each run's mean over its last {tables.LAST} epochs (all, when fewer), then mean ± std "
            "over the runs. Paper: 20 runs of 2000 epochs.")


def _write(out, name, text):
    faults.reached("table-write")
    atomic_write_bytes(out / name, text.encode())


def _stats(recs):
    st = [tables.run_stats(r) for r in recs if r]
    return {k: tables.mean_std([s[k] for s in st]) for k in ("acc", "comp")} | {"n": len(st)}


def reproduce(what, settings, seeds, out, jobs=1, scheduler=None, log=print, grid=FIG2_GRID, lambdas=FIG3_LAMBDA1,
              methods=METHODS, train=True):
    """Train what `what` needs (skipping finished runs) and write its table or figure into `out`; returns
    the text it printed. `settings`: TrainConfig fields shared by every run (epochs, data, ...).
    With ``train=False`` (``--no-train``) nothing is trained: the table or figure is drawn from the runs
    already finished, and each method's row says how many runs it holds."""
    if what not in ("table1", "table2", "fig1", "fig2", "fig3", "fig4"):
        raise UserError(f"reproduce {what!r}: choose table1, table2, fig1, fig2, fig3 or fig4")
    runs = _runs(settings, seeds, methods)
    main_names = [n for n, _, _ in runs]
    if what == "fig2":
        runs += [r for tc in grid[0] for te in grid[1] for r in _runs(settings, seeds, ("dlra",), tau_cos=tc, tau_euc=te)]
    if what == "fig3":
        runs += [r for lam in lambdas for r in _runs(settings, seeds, ("dlra",), lambda1=lam)]
    unique = {}
    for n, c, v in runs:  # the default variant appears once per seed
        unique.setdefault(n, (c, v))
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create this folder ({exc.strerror or exc}); choose a folder you can "
                        "write to") from None
    todo = [(n, c) for n, (c, _) in unique.items()]
    folders = run_all(todo, out, jobs, scheduler, log) if train else finished_runs(todo, out, log)
    recs = {name: tables.read_metrics(f) for name, f in folders.items()}
    asked, main_names = main_names, [n for n in main_names if n in recs]
    if not main_names:
        raise UserError(f"--no-train: no run in {out / 'runs'} is finished with these settings; drop --no-train to "
                        "train them")
    by = {}
    for n in main_names:
        by.setdefault(unique[n][0].method, []).append(recs[n])
    dlra = TrainConfig(method="dlra", **settings)

    def select(**attrs):  # the records of the dlra runs whose configuration has these values
        return [recs[n] for n, (c, _) in unique.items() if c.method == "dlra" and n in recs
                and all(getattr(c, k) == v for k, v in attrs.items())]

    dataset = next((s["dataset"] for s in (RunFolder(folders[n]).summary() for n in main_names) if s), "no data")
    caption = lambda w: _caption(settings, seeds, [recs.get(n) for n in asked], w, dataset)  # noqa: E731
    if what == "table1":
        t, sp = tables.table1(by), tables.speedup(by)
        md = tables.table1_markdown(t, caption("Table 1")) + _speedup_line(sp)
        _write(out, "table1.md", md)
        _write(out, "table1.json", json.dumps({"table": t, "speedup": sp, "seeds": seeds}, indent=2) + "\n")
        return md
    if what in ("table2", "fig4") and not by.get("dlra"):
        raise UserError(f"reproduce {what}: no finished dlra run in {out / 'runs'}; drop --no-train to train them")
    if what == "table2":
        t = tables.table2(by["dlra"])
        md = tables.table2_markdown(t, caption("Table 2 (dlra)"))
        _write(out, "table2.md", md)
        _write(out, "table2.json", json.dumps(t, indent=2) + "\n")
        return md
    if what == "fig1":
        sp = figures.figure1(by, out / "fig1.png")
        return f"wrote {out / 'fig1.png'}\n" + _speedup_line(sp)
    if what == "fig4":
        figures.figure4(by["dlra"], out / "fig4.png")
        return f"wrote {out / 'fig4.png'}\n"
    base_acc = tables.table1(by).get("baseline", {}).get("acc")  # named in Figs. 2 and 3
    if what == "fig2":
        res = {(tc, te): _stats(select(tau_cos=tc, tau_euc=te, lambda1=dlra.lambda1)) for tc in grid[0] for te in grid[1]}
        figures.figure2(res, out / "fig2.png", base_acc)
        _write(out, "fig2.json", _json([{"tau_cos": k[0], "tau_euc": k[1], **v} for k, v in res.items()]))
        return f"wrote {out / 'fig2.png'}\n" + "".join(
            f"tau_cos {k[0]:g} tau_euc {k[1]:g}: " + (_cell(v) if v["n"] else "no finished run") + "\n"
            for k, v in res.items())
    res = {lam: _stats(select(lambda1=lam, tau_cos=dlra.tau_cos, tau_euc=dlra.tau_euc)) for lam in lambdas}
    figures.figure3(res, base_acc, out / "fig3.png")
    _write(out, "fig3.json", _json([{"lambda1": k, **v} for k, v in res.items()]))
    return f"wrote {out / 'fig3.png'}\n" + "".join(
        f"lambda1 {k:g}: " + (_cell(v) if v["n"] else "no finished run") + "\n" for k, v in res.items())


def _json(cells):
    """fig2.json / fig3.json: a cell without finished runs holds null, not NaN (which JSON does not have)."""
    clean = [{k: None if isinstance(v, tuple) and math.isnan(v[0]) else v for k, v in c.items()} for c in cells]
    return json.dumps(clean, indent=2) + "\n"


def _cell(v):
    return (f"accuracy {v['acc'][0]:.2f} ± {v['acc'][1]:.2f} %, compression {v['comp'][0]:.2f} ± {v['comp'][1]:.2f} % "
            f"({v['n']} runs)")


def _speedup_line(sp):
    if not sp:
        return ""
    eb, acc = sp["baseline_best"]
    parts = [f"{m} {v[0]} ({v[1]:.1f}x)" if v[0] else f"{m} not reached"
             for m, v in sp.items() if m not in ("baseline_best", "window", "baseline")]
    return (f"\nEpochs to the baseline's best ({acc:.2f} % at epoch {eb}, {sp['window']}-epoch moving average of the "
            f"mean test accuracy): " + ", ".join(parts) + " (paper: DLRA ~280 of 2000, 7.1x).\n")
