"""Tables drawn from run folders, finished or not: this module only reads them, it never trains.

- :func:`arms`            arms of runs side by side against the first (the baseline): test accuracy (each run's
                          mean over its last ``tables.LAST`` epochs, then mean ± std over the runs), Welch's p
                          against the first arm, compression, parameters, merges, and the epoch at which the
                          arm's smoothed mean accuracy reaches the first arm's best (``tables.speedup``);
                          ``at_epoch`` cuts every run to its first E epochs, so runs of different lengths compare;
- :func:`curve`           compression and test accuracy against epochs, arm by arm (mean over each arm's runs):
                          where compression saturates, and the accuracy at each compression;
- :func:`merge_trend`     merges per epoch on each layer and axis over windows of epochs (mean over the runs),
                          then the merges each layer still needs to reach Table 2's shapes, at the last
                          window's rate (a straight-line extrapolation, nothing more);
- :func:`runs_table`      one row per run: accuracy (last, mean of the last ``tables.LAST``, at the best
                          validation epoch), size, FLOPs, per-layer shapes, seconds per epoch;
- :func:`layers`          per arm and layer, the final shapes and what is left of each layer (mean ± std over the
                          runs): m', columns, features, W' entries against the dense layer's weights (a kernel's
                          W' counts kh kw entries per channel column);
- :func:`readings_table`  the arms of ``reproduce table1 ... --out DIR/ARM`` (the L2 and Eq. 13 readings) side
                          by side against the baseline's runs;
- :func:`axes`            per epoch, each layer and axis's merges and closest gap 1 - |cos| (metrics.jsonl's
                          ``axes``, :mod:`numpy_dlra.experiments.diagnostics`), ||W'||_F and FN's c: an axis
                          that may fuse but whose gap stays above tau_cos with no merge shows as stalled.

Each function prints its Markdown text with ``log`` and returns it. Bad input (a glob that matches no folder,
a folder without metrics.jsonl, a spec without "=") raises :class:`numpy_dlra.errors.UserError`.
"""
import glob
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import tables

WINDOW = 20  # epochs of the moving average for "the epoch reaching the baseline's best" (as Fig. 1)
READING_ARMS = {"base": "", "l2-w": "L2 on W' (as printed)", "l2-effective": "L2 on FN(W') (= on P FN(W') Q)",
                "no-l2": "no L2 (lambda2 0)", "l2-w-search4": "L2 on W', --search-every 4 (the approximation)",
                "l2-w-eq13eff": "L2 on W', Eq. 13 on c W' (--eq13-on effective)",
                "fn-l2-w": "L2 on W' (lambda2 0.1, as dlra's default)"}


def _jsonl(path):
    """The records of a .jsonl file, up to a last line still being written by a running job."""
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                break
    return out


def _metrics(folder, what="RUN"):
    """A run folder's metrics.jsonl records; UserError naming the folder if there are none."""
    path = Path(folder) / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"{what} {folder}: no metrics.jsonl there; give a run folder written by `numpy-dlra train` "
                        "or `numpy-dlra reproduce`")
    records = _jsonl(path)
    if not records:
        raise UserError(f"{what} {folder}: no finished epoch in its metrics.jsonl yet; wait for its first epoch")
    return records


def _config(folder, what="RUN"):
    try:
        return json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{what} {folder}: no readable config.json there; give a run folder written by "
                        "`numpy-dlra train`") from None


def _positive(value, flag):
    if value is not None and value < 1:
        raise UserError(f"{flag} {value}: must be an integer >= 1")


def _pm(ms, digits=2):
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def _p(p):
    return "n/a" if p is None else f"{p:.1e}"


def _arm(spec, at_epoch):
    """(label, runs, left out, why) of a "LABEL=GLOB" spec: the runs' records, all of one length."""
    label, eq, pattern = spec.partition("=")
    if not eq or not label or not pattern:
        raise UserError(f"arm {spec!r}: give LABEL=GLOB, e.g. \"dlra=runs/repro/runs/dlra-seed*\" (quoted, so that "
                        "the shell leaves the glob alone)")
    folders = [d for d in sorted(glob.glob(pattern)) if Path(d).is_dir()]
    if not folders:
        raise UserError(f"arm {spec!r}: {pattern!r} matches no folder; check the path (quote the spec so that the "
                        "shell leaves the glob alone)")
    runs = [r for r in (_jsonl(Path(d) / "metrics.jsonl") if (Path(d) / "metrics.jsonl").is_file() else []
                        for d in folders) if r]
    if not runs:
        raise UserError(f"arm {spec!r}: none of its {len(folders)} folder(s) has a finished epoch in metrics.jsonl; "
                        "give run folders written by `numpy-dlra train`")
    if at_epoch is None:  # only finished runs: those with the epochs of the arm's longest
        n, why = max(len(r) for r in runs), "unfinished"
    else:
        n, why = at_epoch, f"fewer than {at_epoch} epochs"
        if max(len(r) for r in runs) < n:
            raise UserError(f"--at-epoch {at_epoch}: the longest run of arm {label!r} has "
                            f"{max(len(r) for r in runs)} epochs; give an E no larger")
    kept = [r[:n] for r in runs if len(r) >= n]
    return label, kept, len(runs) - len(kept), why


def arms(specs, at_epoch=None, log=print):
    """Arms of run folders side by side against the first: accuracy, Welch p, size, merges, epochs to its best.

    `specs`: "LABEL=GLOB" strings, GLOB naming run folders. Without `at_epoch` an arm counts the runs that have
    the epochs of its longest (an unfinished run is left out); with it, every run is cut to its first
    `at_epoch` epochs and the shorter ones are left out. The runs column says how many each row has.
    """
    _positive(at_epoch, "--at-epoch")
    rows = [_arm(s, at_epoch) for s in specs]
    base = rows[0][0]
    base_acc = [tables.run_stats(r)["acc"] for r in rows[0][1]]
    # integer keys: labels never collide with speedup's own keys ("baseline_best", "window")
    reach = tables.speedup({"baseline": rows[0][1], **{i: r[1] for i, r in enumerate(rows)}}, WINDOW)
    lines = [f"| arm | runs | epochs | test accuracy (%) | p vs {base} (Welch) | compression (%) | params (M) | merges "
             f"| epoch reaching {base}'s best |", "|---|---|---|---|---|---|---|---|---|"]
    for i, (label, runs, left, why) in enumerate(rows):
        st = [tables.run_stats(r) for r in runs]
        acc = [s["acc"] for s in st]
        p = None if i == 0 else tables.welch_p(acc, base_acc)
        merges = np.mean([sum(e.get("merges", 0) for e in r) for r in runs])
        epoch, ratio = reach[i]
        lines.append(f"| {label} | {len(runs)}{f' ({left} {why} left out)' if left else ''} | {st[0]['epochs']} | "
                     f"{_pm(tables.mean_std(acc))} | {_p(p)} | {_pm(tables.mean_std([s['comp'] for s in st]))} | "
                     f"{np.mean([s['params'] for s in st]) / 1e6:.3f} | {merges:.0f} | "
                     f"{f'{epoch} ({ratio:.1f}x)' if epoch else 'not reached'} |")
    eb, best = reach["baseline_best"]
    cut = f"; every run cut to its first {at_epoch} epochs" if at_epoch else ""
    lines += ["", f"{base}'s best: {best:.2f} % at epoch {eb} ({WINDOW}-epoch moving average of its mean test "
                  f"accuracy){cut}. Test accuracy: each run's mean over its last {tables.LAST} epochs, then mean ± "
                  f"std over the runs."]
    return _out(lines, log)


def curve(specs, every=10, at_epoch=None, log=print):
    """Compression (%) and test accuracy (%) against epochs, arm by arm (mean over each arm's runs), every
    `every` epochs and at the last; and the merges per epoch over each window. `specs` as in :func:`arms`."""
    _positive(every, "--every")
    _positive(at_epoch, "--at-epoch")
    rows = [_arm(s, at_epoch) for s in specs]
    n = max(len(r[1][0]) for r in rows)
    epochs = sorted(set(range(every, n + 1, every)) | {n})
    lines = ["| epoch | " + " | ".join(f"{label}: compression, test acc., merges/epoch" for label, *_ in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for e in epochs:
        cells = []
        for label, runs, _, _ in rows:
            if len(runs[0]) < e:
                cells.append("")
                continue
            comp = np.mean([r[e - 1]["compression"] for r in runs])
            acc = np.mean([r[e - 1]["test_acc"] for r in runs])
            lo = max(0, e - every)
            rate = np.mean([sum(x.get("merges", 0) for x in r[lo:e]) / (e - lo) for r in runs])
            cells.append(f"{comp:.2f} %, {acc:.2f} %, {rate:.1f}")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lines += ["", "Mean over each arm's runs (" + ", ".join(f"{label}: {len(runs)}" for label, runs, _, _ in rows)
              + f"); test accuracy at that epoch, merges per epoch over the {every} epochs up to it."]
    return _out(lines, log)


def _out(lines, log):
    text = "\n".join(lines) + "\n"
    if log:
        log(text.rstrip("\n"))
    return text


def merge_trend(folders, window=20, log=print):
    """Merges per epoch on each layer and axis, per window of epochs (mean over the runs), and Table 2's gap.

    `folders`: DLRA run folders (merges.jsonl, metrics.jsonl), cut to the epochs of the shortest.
    """
    _positive(window, "--window")
    data = []
    for f in folders:
        metrics = _metrics(f)
        if not (Path(f) / "merges.jsonl").is_file():
            raise UserError(f"RUN {f}: no merges.jsonl there; give `numpy-dlra train --method dlra` run folders")
        data.append((_jsonl(Path(f) / "merges.jsonl"), metrics, metrics[0]["step"]))  # steps per epoch
    epochs = min(len(m) for _, m, _ in data)
    keys = sorted({(r["layer"], r["axis"]) for merges, _, _ in data for r in merges})
    lines = [f"{len(data)} run(s), {epochs} epochs each; merges per epoch, mean over the runs",
             "| epochs | " + " | ".join(f"L{l} {ax}" for l, ax in keys) + " | all |",
             "|---|" + "---|" * (len(keys) + 1)]
    last = {}
    for lo in range(0, epochs, window):
        hi = min(lo + window, epochs)
        last = {k: sum(1 for merges, _, spe in data for r in merges
                       if (r["layer"], r["axis"]) == k and lo * spe < r["step"] <= hi * spe) / len(data) / (hi - lo)
                for k in keys}
        lines.append(f"| {lo + 1}-{hi} | " + " | ".join(f"{last[k]:.2f}" for k in keys)
                     + f" | {sum(last.values()):.2f} |")

    def need(todo, k):
        r, todo = last.get(k, 0.0), max(todo, 0)
        return f"{todo:.0f} | {r:.2f} | " + (f"{todo / r:.0f}" if r > 0 else ("0" if todo == 0 else "never"))

    final = [m[epochs - 1]["layers"] for _, m, _ in data]
    lines += ["", f"After {epochs} epochs (mean over the runs) against the paper's Table 2, and the epochs the last "
                  "window's rate would need to close the gap:",
              "| layer | m' x n' here | paper | rows still to merge | at rate/epoch | epochs | cols still to merge | "
              "at rate/epoch | epochs |", "|---|---|---|---|---|---|---|---|---|"]
    for l, ((pn, _), (pm, _), _) in sorted(tables.PAPER_TABLE2.items()):  # (input n', output m', feature) means
        if l > len(final[0]):
            continue
        m = sum(f[l - 1]["m"] for f in final) / len(final)
        n = sum(f[l - 1]["n"] for f in final) / len(final)
        lines.append(f"| {l} | {m:.0f} x {n:.0f} | {pm:.0f} x {pn:.0f} | {need(m - pm, (l, 'rows'))} | "
                     f"{need(n - pn, (l, 'cols'))} |")
    return _out(lines, log)


def _dense_weights(cfg):
    """The weights of each layer of the run's dense network, before any merge: the CNN's kernels 9 C f1, 9 f1 f2,
    then its dense layers; the MLP's m n."""
    if cfg.get("model") == "cnn":
        H, W, C = cfg["input_shape"]
        f1, f2, hidden = cfg.get("cnn_widths") or (32, 32, 256)
        return [9 * C * f1, 9 * f1 * f2, f2 * ((H - 4) // 2) * ((W - 4) // 2) * hidden, hidden * cfg["sizes"][-1]]
    sizes = cfg["sizes"]
    return [sizes[l] * sizes[l - 1] for l in range(1, len(sizes))]


def _entries(d):
    """W' entries of a metrics.jsonl layer record: m' n', times kh kw for a kernel whose columns are channels."""
    k = d.get("kernel")
    return d["m"] * d["n"] * (k[0] * k[1] if k and d.get("columns") == "channel" else 1)


def layers(specs, at_epoch=None, log=print):
    """Per arm and layer at the runs' last epoch: m' (outputs of W'), columns (n'), features G (the exported
    width), and W' entries as % of the dense layer's weights, each mean ± std over the arm's runs."""
    lines = ["| arm | runs | layer | m' | columns | features | W' entries, % of the dense layer |", "|---|---|---|---|---|---|---|"]
    for spec in specs:
        label, runs, _, _ = _arm(spec, at_epoch)
        folders = [d for d in sorted(glob.glob(spec.partition("=")[2])) if (Path(d) / "metrics.jsonl").is_file()]
        dense = _dense_weights(_config(folders[0]))
        finals = [r[-1]["layers"] for r in runs]
        for l in range(len(finals[0])):
            col = lambda f: tables.mean_std([f(run[l]) for run in finals])  # noqa: E731
            k = finals[0][l].get("kernel")
            kind = f"conv {k[0]}x{k[1]}" if k and l < 2 else "dense"  # the CNN's dense 256 is held as a 12x12 kernel
            lines.append(f"| {label} | {len(runs)} | {l + 1} ({kind}) | {_pm(col(lambda d: d['m']), 1)} | "
                         f"{_pm(col(lambda d: d['n']), 1)} | {_pm(col(lambda d: d['feat']), 1)} | "
                         f"{_pm(col(lambda d: 100.0 * _entries(d) / dense[l]), 1)} |")
    return _out(lines, log)


def runs_table(folders, log=print):
    """One row per run: test accuracy (last, mean of the last tables.LAST epochs, at the best validation
    epoch), parameters, compression, FLOPs, the shapes of layers 2.. (every layer of a CNN, whose first layer's
    filters fuse too) and seconds per epoch."""
    lines = [f"| run | method | data | epochs | test % (last) | test % (mean of last {tables.LAST}) | test % at best "
             "val | params | compression % | FLOPs | layers 2.. m'xn' (/feat when > m'; CNN: all layers) | s/epoch |",
             "|" + "---|" * 12]
    for f in folders:
        hist, cfg = _metrics(f), _config(f)
        last, best = hist[-1], max(hist, key=lambda r: r["val_acc"])
        acc = tables.run_stats(hist)["acc"]
        shapes = " ".join(f"{d['m']}x{d['n']}" + (f"/{d['feat']}" if d["feat"] != d["m"] else "")
                          for d in last["layers"][(0 if cfg.get("model") == "cnn" else 1):])
        lines.append(f"| {Path(f).name} | {cfg['method']} | {cfg['data']} | {last['epoch']} | {last['test_acc']:.2f} | "
                     f"{acc:.2f} | {best['test_acc']:.2f} (ep {best['epoch']}) | {last['params']:,} | "
                     f"{last['compression']:.2f} | {last['flops_per_sample'] / 1e6:.3f} M | {shapes} | "
                     f"{sum(r['seconds'] for r in hist) / len(hist):.1f} |")
    return _out(lines, log)


def readings_table(directory, log=print):
    """The reading arms of `directory` (folders ARM of ``reproduce table1 ... --out DIR/ARM``) side by side: per
    method and arm, test accuracy, Welch p against the baseline's runs, compression and merges."""
    root = Path(directory)
    if not root.is_dir():
        raise UserError(f"DIR {directory}: no such folder; give the folder holding the arms (l2-w, base, ...)")
    runs = {}
    for arm, label in READING_ARMS.items():
        holder = root / arm / "runs" if (root / arm / "runs").is_dir() else root / arm  # reproduce's or a copy's
        for d in sorted(holder.glob("*-seed*")):
            records = _jsonl(d / "metrics.jsonl") if (d / "metrics.jsonl").is_file() else []
            if records:
                method = d.name.rsplit("-seed", 1)[0]
                runs.setdefault(method if arm == "base" else f"{method}, {label}", []).append(records)
    if not runs:
        raise UserError(f"DIR {directory}: no run under any of its arms ({', '.join(READING_ARMS)}); give the "
                        "folder holding them")
    stats = {name: [tables.run_stats(r) for r in rs] for name, rs in runs.items()}
    base = [s["acc"] for s in stats.get("baseline", [])]
    lines = ["| run | runs | epochs | test accuracy (%) | p vs baseline (Welch) | compression (%) | merges |",
             "|---|---|---|---|---|---|---|"]
    for name, st in stats.items():
        acc = [s["acc"] for s in st]
        merges = np.mean([sum(e.get("merges", 0) for e in r) for r in runs[name]])
        lines.append(f"| {name} | {len(st)} | {min(s['epochs'] for s in st)} | {_pm(tables.mean_std(acc))} | "
                     f"{_p(None if name == 'baseline' else tables.welch_p(acc, base))} | "
                     f"{_pm(tables.mean_std([s['comp'] for s in st]))} | {merges:.0f} |")
    for arm, what in (("l2-w-search4", "--search-every 4"), ("l2-w-eq13eff", "--eq13-on effective")):
        exact, other = (stats.get(f"dlra, {READING_ARMS[a]}") for a in ("l2-w", arm))
        if exact and other and len(other) > 1:
            p = {k: tables.welch_p([s[k] for s in other], [s[k] for s in exact]) for k in ("acc", "comp")}
            lines += ["", f"{what} against the default (both L2 on W'): accuracy p = {p['acc']:.2f}, compression "
                          f"p = {p['comp']:.2g} (Welch)"]
    return _out(lines, log)


def axes(folder, every=1, log=print):
    """Per epoch (or window of `every` epochs), each layer and axis's merges and smallest closest-pair gap
    1 - |cos|, with ||W'||_F and FN's c per layer; then the axes that are stalled at the end.

    A cell reads "merges / gap_min": merges summed over the window, gap_min the smallest over it; "!" marks a
    stalled axis, one that may fuse (at some epoch's end in the window) but had no merge while its gap stayed at
    or above tau_cos; "x" one that may not fuse and had no merge. ||W'||_F and c are those at the window's end.
    """
    _positive(every, "--every")
    records = _metrics(folder)
    traced = [r for r in records if "axes" in r]
    if not traced:
        raise UserError(f"RUN {folder}: its metrics.jsonl has no per-epoch \"axes\" (a baseline or fn run, or a DLRA "
                        "run trained before the diagnostics); train the run again with this version to see them")
    tau = _config(folder).get("tau_cos", 1e-4)
    keys = sorted({(a["layer"], a["axis"]) for r in traced for a in r["axes"]}, key=lambda k: (k[0], k[1] != "cols"))
    layers = sorted({l for l, _ in keys})

    def entries(window, k):
        return [a for r in window for a in r["axes"] if (a["layer"], a["axis"]) == k]

    def stalled(got):  # may fuse at some epoch's end, yet no merge and the gap never below tau_cos
        return (any(a["fusable"] for a in got) and not any(a["merges"] for a in got)
                and all(a["gap_min"] is not None and a["gap_min"] >= tau for a in got))

    def cell(window, k):
        got = entries(window, k)
        if not got:
            return "-"
        gaps = [a["gap_min"] for a in got if a["gap_min"] is not None]
        merges = sum(a["merges"] for a in got)
        mark = "!" if stalled(got) else ("x" if not merges and not any(a["fusable"] for a in got) else "")
        return f"{merges} / {f'{min(gaps):.2e}' if gaps else '-'}{mark}"

    def norms(window, l):
        got = [a for a in window[-1]["axes"] if a["layer"] == l]
        return f"{got[0]['w_norm']:.2f}, {got[0]['c']:.2f}" if got else "-"

    head = []
    for l in layers:
        head += [f"L{l} {ax}" for ll, ax in keys if ll == l] + [f"L{l} ‖W'‖_F, c"]
    lines = [f"{Path(folder).name}: per {'epoch' if every == 1 else f'{every} epochs'}, merges / smallest gap "
             f"1 - |cos| of each axis's closest pair (tau_cos {tau:g}); ! may fuse but no merge and the gap stayed "
             "at or above tau_cos, x may not fuse and had no merge", "| epochs | " + " | ".join(head) + " |",
             "|---|" + "---|" * len(head)]
    if len(traced) < len(records):
        lines.insert(0, f"({len(records) - len(traced)} of its {len(records)} epochs have no \"axes\": trained "
                        "before the diagnostics; left out)")
    for lo in range(0, len(traced), every):
        window = traced[lo:lo + every]
        first, end = window[0]["epoch"], window[-1]["epoch"]
        cells = []
        for l in layers:
            cells += [cell(window, k) for k in keys if k[0] == l] + [norms(window, l)]
        lines.append(f"| {first if first == end else f'{first}-{end}'} | " + " | ".join(cells) + " |")
    stuck = []
    for k in keys:  # a stalled axis's trailing epochs
        got = []
        for r in reversed(traced):
            a = entries([r], k)
            if not a or a[0]["merges"] or a[0]["gap_min"] is None or a[0]["gap_min"] < tau:
                break
            got += a
        if got and stalled(got):
            gap = min(a["gap_min"] for a in got)
            stuck.append(f"L{k[0]} {k[1]} for its last {len(got)} epoch(s) (smallest gap {gap:.2e}, "
                         f"{gap / tau:.1f} x tau_cos)")
    lines += ["", "Stalled at the end (may fuse, no merge, gap at or above tau_cos): "
              + ("; ".join(stuck) if stuck else "none") + "."]
    return _out(lines, log)
