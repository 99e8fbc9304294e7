"""`numpy-dlra analyze`: tables read from run folders (here small synthetic ones), never trained."""
import json

import numpy as np
import pytest
from scipy import stats

from numpy_dlra.cli import main
from numpy_dlra.errors import UserError
from numpy_dlra.experiments import analyze, tables
from numpy_dlra.experiments.config import TrainConfig

SPE = 10  # steps per epoch of the synthetic runs


def layers(m2=500, n2=500):
    return [{"m": 500, "n": 784, "feat": 500}, {"m": m2, "n": n2, "feat": 500}] + \
           [{"m": 500, "n": 500, "feat": 500}] * 3 + [{"m": 10, "n": 500, "feat": 10}]


def write_run(folder, method, accs, merges=(), axes=None, compression=0.0, params=1_400_000, shape2=(500, 500)):
    """A run folder as `numpy-dlra train` leaves it: config.json, metrics.jsonl (one record per accuracy in
    `accs`), and for dlra merges.jsonl (`merges`: (step, layer, axis) triples)."""
    folder.mkdir(parents=True)
    cfg = TrainConfig(method=method, epochs=len(accs), data="embedded")
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    per_epoch = [sum(1 for s, _, _ in merges if (e - 1) * SPE < s <= e * SPE) for e in range(1, len(accs) + 1)]
    recs = [{"epoch": e, "step": e * SPE, "val_acc": float(a), "test_acc": float(a), "params": params,
             "compression": compression, "flops_per_sample": 2 * params, "layers": layers(*shape2),
             "merges": per_epoch[e - 1], "seconds": 2.0}
            | ({"axes": axes[e - 1]} if axes and axes[e - 1] is not None else {}) for e, a in enumerate(accs, start=1)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    if method == "dlra":
        (folder / "merges.jsonl").write_text("".join(json.dumps({"step": s, "layer": l, "axis": ax}) + "\n"
                                                     for s, l, ax in merges))
    return folder


def row(text, label):
    """The cells of the table row that starts with `label` (cell 0)."""
    return next(ln for ln in text.splitlines() if ln.startswith(f"| {label} |"))[2:-2].split(" | ")


def quiet(*_):
    pass


@pytest.fixture
def two_arms(tmp_path):
    """Baseline runs: test accuracy = epoch + (-1, 0, 1), 30 epochs; dlra: 2 x epoch + (-2, 0, 2), with merges."""
    e = np.arange(1, 31)
    for k, off in enumerate((-1, 0, 1)):
        write_run(tmp_path / "b" / f"baseline-seed{k}", "baseline", list(e + off))
        write_run(tmp_path / "d" / f"dlra-seed{k}", "dlra", list(2 * e + 2 * off), compression=4.0 + k,
                  params=1_300_000 + 30_000 * k, merges=[(5, 2, "cols")] * (k + 1))
    return [f"baseline={tmp_path}/b/baseline-seed*", f"dlra={tmp_path}/d/dlra-seed*"]


def test_arms_accuracy_is_mean_std_of_each_runs_last_epochs_and_p_is_welchs(two_arms):
    text = analyze.arms(two_arms, log=quiet)
    # each run's mean over epochs 26-30: baseline 27, 28, 29; dlra 54, 56, 58
    assert row(text, "baseline")[1:5] == ["3", "30", "28.00 ± 1.00", "n/a"]
    p = stats.ttest_ind([54, 56, 58], [27, 28, 29], equal_var=False).pvalue
    dlra = row(text, "dlra")
    assert dlra[3:5] == ["56.00 ± 2.00", f"{p:.1e}"]
    assert dlra[5:8] == ["5.00 ± 1.00", "1.330", "2"]  # compression 4, 5, 6 %; params; merges 1, 2, 3 per run


def test_arms_epoch_reaching_the_baselines_best_uses_tables_moving_average(two_arms):
    text = analyze.arms(two_arms, log=quiet)
    # baseline mean curve = epoch: its 20-epoch moving average peaks at epoch 30, mean(11..30) = 20.5;
    # dlra's = 2 x epoch: its average over epochs 1..i is i + 1, first >= 20.5 at epoch 20
    assert tables.moving_average(np.arange(1, 31), analyze.WINDOW).max() == 20.5
    assert row(text, "baseline")[8] == "30 (1.0x)"
    assert row(text, "dlra")[8] == "20 (1.5x)"
    assert "baseline's best: 20.50 % at epoch 30" in text


def test_arms_leave_out_unfinished_runs_unless_at_epoch_cuts_them_all(tmp_path, two_arms):
    write_run(tmp_path / "d" / "dlra-seed3", "dlra", list(2 * np.arange(1, 13)))  # killed at epoch 12
    assert row(analyze.arms(two_arms, log=quiet), "dlra")[1:3] == ["3 (1 unfinished left out)", "30"]

    text = analyze.arms(two_arms, at_epoch=10, log=quiet)  # every run cut to epochs 1-10: all four count
    assert row(text, "baseline")[1:4] == ["3", "10", "8.00 ± 1.00"]  # epochs 6-10: 7, 8, 9
    dlra = [14, 16, 18, 16]  # seed 3 (killed at epoch 12) counts
    assert row(text, "dlra")[1:4] == ["4", "10", f"{np.mean(dlra):.2f} ± {np.std(dlra, ddof=1):.2f}"]
    assert "every run cut to its first 10 epochs" in text

    text = analyze.arms(two_arms, at_epoch=20, log=quiet)
    assert row(text, "dlra")[1:3] == ["3 (1 fewer than 20 epochs left out)", "20"]


def test_merge_trend_counts_merges_per_layer_and_axis_per_window(tmp_path):
    a = write_run(tmp_path / "a", "dlra", [50] * 4, shape2=(450, 449),
                  merges=[(5, 2, "cols"), (15, 2, "cols"), (25, 2, "cols"), (35, 6, "cols")])
    b = write_run(tmp_path / "b", "dlra", [50] * 4, shape2=(450, 449), merges=[(5, 2, "cols"), (12, 2, "rows")])
    text = analyze.merge_trend([a, b], window=2, log=quiet)
    assert "| epochs | L2 cols | L2 rows | L6 cols | all |" in text
    # epochs 1-2 (steps 1-20): layer 2's columns merged 2 + 1 times, its rows once: per run and epoch
    assert "| 1-2 | 0.75 | 0.25 | 0.00 | 1.00 |" in text
    assert "| 3-4 | 0.25 | 0.00 | 0.25 | 0.50 |" in text
    # layer 2 is 450 x 449, Table 2's 415 x 414: 35 rows (no merge in the last window: never), 35 columns at 0.25
    assert "| 2 | 450 x 449 | 415 x 414 | 35 | 0.00 | never | 35 | 0.25 | 140 |" in text


def test_a_line_still_being_written_is_ignored(tmp_path):
    run = write_run(tmp_path / "r", "dlra", [50] * 2, merges=[(5, 2, "cols")])
    with open(run / "merges.jsonl", "a") as f:
        f.write('{"step": 19, "lay')
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "st')
    assert "2 epochs each" in analyze.merge_trend([run], log=quiet)
    assert "| 1-2 | 0.50 | 0.50 |" in analyze.merge_trend([run], log=quiet)


def test_runs_table_averages_the_last_tables_LAST_epochs(tmp_path, monkeypatch):
    run = write_run(tmp_path / "dlra-x", "dlra", [10, 20, 30, 40, 60], compression=1.5, shape2=(499, 498))
    monkeypatch.setattr(tables, "LAST", 3)
    text = analyze.runs_table([run], log=quiet)
    assert "test % (mean of last 3)" in text
    r = row(text, "dlra-x")
    assert r[1:7] == ["dlra", "embedded", "5", "60.00", "43.33", "60.00 (ep 5)"]
    assert r[10] == "499x498/500 500x500 500x500 500x500 10x500"  # layer 2's features exceed m'


@pytest.mark.parametrize("nested", [True, False])  # reproduce's DIR/ARM/runs/... or a copy's DIR/ARM/...
def test_readings_table_compares_each_arm_with_the_baseline(tmp_path, nested):
    sub = "runs/" if nested else ""
    for k, (b, d) in enumerate([(80, 70), (82, 71), (84, 75)]):
        write_run(tmp_path / f"base/{sub}baseline-seed{k}", "baseline", [b] * 5)
        write_run(tmp_path / f"l2-w/{sub}dlra-seed{k}", "dlra", [d] * 5, compression=1.0)
    text = analyze.readings_table(tmp_path, log=quiet)
    p = stats.ttest_ind([70, 71, 75], [80, 82, 84], equal_var=False).pvalue
    assert row(text, "baseline")[1:5] == ["3", "5", "82.00 ± 2.00", "n/a"]
    assert row(text, "dlra, L2 on W' (as printed)")[3:6] == ["72.00 ± 2.65", f"{p:.1e}", "1.00 ± 0.00"]


def axis(layer, ax, merges, gap, fusable=True, w_norm=3.0, c=5.0):
    return {"layer": layer, "axis": ax, "gap_min": gap, "gap_end": gap, "merges": merges, "fusable": fusable,
            "w_norm": w_norm, "g": 1.0, "c": c}


def test_axes_shows_a_stalled_axis(tmp_path):
    # layer 2: its columns merge every epoch (gap below tau_cos = 1e-4); its rows may fuse but their closest
    # pair stays 30 x tau_cos apart and never merges: stalled. Layer 6's rows may never fuse.
    epochs = [[axis(2, "cols", 1, 5e-5, w_norm=4.0 - e / 10), axis(2, "rows", 0, 3e-3 + e * 1e-4),
               axis(6, "rows", 0, 0.2, fusable=False, w_norm=1.0, c=2.0)] for e in range(4)]
    run = write_run(tmp_path / "dlra-seed0", "dlra", [50] * 4, axes=epochs)
    text = analyze.axes(run, log=quiet)
    assert "| epochs | L2 cols | L2 rows | L2 ‖W'‖_F, c | L6 rows | L6 ‖W'‖_F, c |" in text
    assert "| 1 | 1 / 5.00e-05 | 0 / 3.00e-03! | 4.00, 5.00 | 0 / 2.00e-01x | 1.00, 2.00 |" in text
    assert "| 4 | 1 / 5.00e-05 | 0 / 3.30e-03! | 3.70, 5.00 |" in text
    assert "Stalled at the end (may fuse, no merge, gap at or above tau_cos): L2 rows for its last 4 epoch(s) " \
           "(smallest gap 3.00e-03, 30.0 x tau_cos)." in text

    text = analyze.axes(run, every=2, log=quiet)  # windows of 2 epochs: merges summed, the smallest gap
    assert "| 3-4 | 2 / 5.00e-05 | 0 / 3.20e-03! | 3.70, 5.00 |" in text


def test_axes_of_a_merging_run_finds_nothing_stalled(tmp_path):
    run = write_run(tmp_path / "r", "dlra", [50] * 3,  # epoch 1 was trained before the diagnostics
                    axes=[None, [axis(3, "cols", 0, 2e-3)], [axis(3, "cols", 1, 9e-5)]])
    text = analyze.axes(run, log=quiet)
    assert "(1 of its 3 epochs have no \"axes\"" in text and "| 1 |" not in text
    assert "| 2 | 0 / 2.00e-03! |" in text and "| 3 | 1 / 9.00e-05 |" in text
    assert "tau_cos): none." in text


def test_the_cli_prints_what_the_function_returns(two_arms, capsys):
    assert main(["analyze", "arms", *two_arms, "--at-epoch", "10"]) == 0
    assert capsys.readouterr().out == analyze.arms(two_arms, at_epoch=10, log=quiet)


@pytest.mark.parametrize("argv, needle", [
    (["arms", "dlra runs/*"], "arm 'dlra runs/*': give LABEL=GLOB"),
    (["arms", "dlra={tmp}/nothing-here-*"], "matches no folder"),
    (["arms", "b={tmp}/b/baseline-seed*", "--at-epoch", "31"], "--at-epoch 31: the longest run of arm 'b' has 30"),
    (["arms", "b={tmp}/b/baseline-seed*", "--at-epoch", "0"], "--at-epoch 0: must be an integer >= 1"),
    (["arms", "e={tmp}/empty*"], "none of its 1 folder(s) has a finished epoch"),
    (["runs", "{tmp}/empty"], "RUN {tmp}/empty: no metrics.jsonl there"),
    (["merge-trend", "{tmp}/b/baseline-seed0"], "no merges.jsonl there"),
    (["merge-trend", "{tmp}/d/dlra-seed0", "--window", "0"], "--window 0: must be an integer >= 1"),
    (["readings", "{tmp}/nowhere"], "DIR {tmp}/nowhere: no such folder"),
    (["readings", "{tmp}/b"], "no run under any of its arms"),
    (["axes", "{tmp}/d/dlra-seed0"], "has no per-epoch \"axes\""),  # a run trained before the diagnostics
    (["axes", "{tmp}/empty"], "no metrics.jsonl there"),
])
def test_bad_input_exits_2_naming_the_argument(tmp_path, two_arms, capsys, argv, needle):
    (tmp_path / "empty").mkdir()
    tmp = str(tmp_path)
    assert main(["analyze"] + [a.format(tmp=tmp) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("numpy-dlra: error: ") and needle.format(tmp=tmp) in err and "Traceback" not in err
    assert out == ""


def test_the_functions_raise_user_error():
    with pytest.raises(UserError):
        analyze.arms(["no-equals-sign"], log=quiet)


def test_analyze_needs_a_table(capsys):
    with pytest.raises(SystemExit) as e:
        main(["analyze"])
    assert e.value.code == 2 and "arms" in capsys.readouterr().err


def test_curve_gives_each_arms_mean_compression_accuracy_and_merge_rate(two_arms):
    """Every K epochs and the last: the arm's mean compression and test accuracy at that epoch, and its merges per
    epoch over the window up to it (the dlra runs merge 1, 2 and 3 times at step 5, i.e. in epoch 1)."""
    text = analyze.curve(two_arms, every=7, log=quiet)
    assert [ln.split(" | ")[0] for ln in text.splitlines()[2:7]] == ["| 7", "| 14", "| 21", "| 28", "| 30"]
    assert row(text, "7") == ["7", "0.00 %, 7.00 %, 0.0", "5.00 %, 14.00 %, 0.3"]  # (1 + 2 + 3) / 3 / 7 merges
    assert row(text, "30")[2] == "5.00 %, 60.00 %, 0.0"


def test_layers_gives_each_layers_shape_and_what_is_left_of_it(tmp_path):
    """An MLP layer's W' entries against m n; a CNN kernel's with channel columns count kh kw entries per column,
    and the dense 256 after the pool is held as a 12x12 kernel over 32 channels (4608 inputs)."""
    for k, (m3, n3) in enumerate([(200, 32), (210, 30)]):
        d = tmp_path / f"cnn-seed{k}"
        d.mkdir()
        layers = [{"m": 30, "n": 1, "feat": 31, "kernel": [3, 3], "columns": "channel"},
                  {"m": 32, "n": 32, "feat": 32, "kernel": [3, 3], "columns": "channel"},
                  {"m": m3, "n": n3, "feat": m3, "kernel": [12, 12], "columns": "channel"},
                  {"m": 10, "n": 128, "feat": 10}]
        (d / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "test_acc": 80.0, "val_acc": 80.0, "layers": layers}) + "\n")
        (d / "config.json").write_text(json.dumps({"model": "cnn", "input_shape": [28, 28, 1], "cnn_widths": [32, 32, 256],
                                                   "sizes": [784, 500, 10], "method": "dlra"}))
    text = analyze.layers([f"cnn={tmp_path}/cnn-seed*"], log=quiet)
    rows = [r.split(" | ") for r in text.splitlines()[2:]]
    assert [r[2] for r in rows] == ["1 (conv 3x3)", "2 (conv 3x3)", "3 (dense)", "4 (dense)"]
    assert rows[0][3:6] == ["30.0 ± 0.0", "1.0 ± 0.0", "31.0 ± 0.0"] and rows[0][6] == "93.8 ± 0.0 |"
    left3 = [100 * 200 * 32 * 144 / (256 * 4608), 100 * 210 * 30 * 144 / (256 * 4608)]
    assert rows[2][6] == f"{np.mean(left3):.1f} ± {np.std(left3, ddof=1):.1f} |"  # sample std, as every table
    assert rows[3][6] == f"{100 * 10 * 128 / 2560:.1f} ± 0.0 |"
