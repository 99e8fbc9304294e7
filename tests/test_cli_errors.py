"""Bad command lines: exit 2 with the one-line error first and a pointer to --help, not a screen of usage."""
import pytest

from numpy_dlra.cli import main


def _error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.splitlines()


def test_analyze_without_a_table_names_the_tables(capsys):
    err = _error(capsys, ["analyze"])
    assert err[0] == ("numpy-dlra analyze: error: which table? one of: arms, curve, merge-trend, layers, runs, readings, "
                      "controls, axes")
    assert "required: table" not in "\n".join(err)


def test_no_command_names_the_commands(capsys):
    err = _error(capsys, [])
    assert err[0].startswith("numpy-dlra: error: which command? one of: train, sweep-rank, ")


@pytest.mark.parametrize("argv, prog, needle", [
    (["train", "--method", "nope"], "numpy-dlra train", "argument --method: invalid choice: 'nope'"),
    (["train", "--epochs", "x"], "numpy-dlra train", "argument --epochs: invalid int value: 'x'"),
    (["analyze", "nope"], "numpy-dlra analyze", "invalid choice: 'nope'"),
    (["analyze", "arms"], "numpy-dlra analyze arms", "the following arguments are required: LABEL=GLOB"),
])
def test_a_bad_flag_is_one_line_and_where_the_help_is(capsys, argv, prog, needle):
    err = _error(capsys, argv)
    assert len(err) == 2 and err[0].startswith(f"{prog}: error: ") and needle in err[0], err
    assert err[1] == f"(see `{prog} --help`)"


def test_ctrl_c_says_how_to_resume_and_exits_130(capsys, monkeypatch, tmp_path):
    """Ctrl-C during a command: no traceback; the message names the same command with --resume (only --epochs
    may change), since `train --resume` with other flags is refused as a different configuration."""
    import numpy_dlra.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_train", interrupted)
    assert main(["train", "--out", str(tmp_path / "r")]) == 130
    err = capsys.readouterr().err
    assert "rerun the same `train` command with --resume" in err and "only --epochs may change" in err
    assert "Traceback" not in err
