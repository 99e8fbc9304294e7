"""`numpy-dlra export`: the trained network out as a plain dense MLP, equal to the run's own forward pass.

The fold (FN's scale, P and Q, Sec. 4.3's signed feature groups) is exact: the exported logits equal the
factorized network's eval-mode logits to 1e-10 relative in float64, for any widths and signs of P and Q
(hypothesis) and for the paper's network after real merges of both axes."""
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra.cli import main
from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.experiments.build import build_model
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.export import export_arrays, forward
from numpy_dlra.experiments.run_folder import RunFolder
from numpy_dlra.experiments.train import train
from test_factorized import random_net

USAGE = Path(__file__).resolve().parents[1] / "docs" / "usage.md"


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 9), min_size=1, max_size=3), st.booleans())
def test_the_fold_is_exact_for_any_widths_and_signs(seed, hidden, fn):
    """Random P, Q (both signs, some rows and columns shared), W', b', g: export == forward (eval)."""
    sizes = (7, *hidden, 4)
    model, params = random_net(seed, sizes, fn=fn)
    x = np.random.default_rng(seed + 1).standard_normal((6, 7))
    arrays, widths = export_arrays(model, params, np.float64)
    assert widths == [7] + [d["feat"] for d in model.layer_stats()[:-1]] + [4]  # hidden widths: the features G_l
    assert rel(forward(arrays, x), model.forward(params, x)[0]) < 1e-10


@pytest.fixture(scope="module")
def merged_run(tmp_path_factory):
    """The paper's 784-500x5-10 after real merges on both axes and of both signs (thresholds loose enough to
    fuse vectors 37 degrees apart, 9 steps: about 530 merges, signed feature groups on layers 2-5), float64."""
    out = tmp_path_factory.mktemp("export") / "dlra"
    cfg = TrainConfig(method="dlra", data="embedded", epochs=1, batch_size=500, dtype="float64", lambda1=200.0,
                      tau_cos=0.8, tau_euc=100.0, probe_size=0)
    train(cfg, out, progress=False, log=lambda m: None, dataset=load_dataset("embedded"))
    return out


def test_the_papers_network_after_real_merges(merged_run, tmp_path, capsys):
    state = RunFolder(merged_run).load()
    model, params = build_model(state.config, state=state)
    merges = [json.loads(ln) for ln in (merged_run / "merges.jsonl").read_text().splitlines()]
    assert {m["axis"] for m in merges} == {"rows", "cols"} and any(m["r"] < 0 for m in merges)
    assert any(f.p_scale.min() < 0 for f in model.factors[:-1])  # signed feature groups to resolve
    assert main(["export", str(merged_run), "--out", str(tmp_path / "e.npz"), "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    z = np.load(tmp_path / "e.npz")
    meta = json.loads(str(z["meta"]))
    x = load_dataset("embedded").x_test[:300].astype(np.float64)
    arrays = {k: z[k] for k in z.files if k[0] in "Wb"}
    assert rel(forward(arrays, x), model.forward(params, x)[0]) < 1e-10
    assert list(z["sizes"]) == [784] + [d["feat"] for d in model.layer_stats()[:-1]] + [10]
    counts = meta["params"]
    assert counts == {"dense": 1_399_510, "exported": sum(a.size for a in arrays.values()),
                      "factorized": model.param_count()}
    assert f"dense original {counts['dense']:,}" in out and f"exported {counts['exported']:,}" in out
    assert meta["method"] == "dlra" and meta["input_scaling"] == "uint8/255" and meta["finished"]
    assert z["W1"].dtype == np.float64


def test_the_plain_forward_in_the_docs_runs_the_file_without_the_package(merged_run, tmp_path):
    code = re.search(r"```python\n(import json\nimport numpy as np\n\ndef plain_forward.*?)```", USAGE.read_text(),
                     re.S).group(1)
    assert "numpy_dlra" not in code
    scope = {}
    exec(code, scope)  # noqa: S102 - the documented snippet, as written
    assert main(["export", str(merged_run), "--out", str(tmp_path / "e.npz")]) == 0  # float32, the default
    x = load_dataset("embedded").x_test[:200]
    logits, meta = scope["plain_forward"](tmp_path / "e.npz", x)
    state = RunFolder(merged_run).load()
    model, params = build_model(state.config, state=state)
    assert logits.dtype == np.float32 and rel(logits, model.forward(params, x.astype(np.float64))[0]) < 1e-4
    assert (logits.argmax(1) == model.predict(params, x.astype(np.float64))).mean() > 0.99


@pytest.mark.parametrize("method,extra", [("baseline", {}), ("fn", {}), ("baseline", {"layer_ranks": ((2, 3),)})])
def test_baseline_and_fn_runs_export_at_their_own_widths(tmp_path, method, extra):
    cfg = TrainConfig(method=method, data="embedded", epochs=1, sizes=(784, 12, 8, 10), batch_size=500,
                      dtype="float64", **extra)
    train(cfg, tmp_path / "run", progress=False, log=lambda m: None, dataset=load_dataset("embedded"))
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "e.npz"), "--dtype", "float64"]) == 0
    z = np.load(tmp_path / "e.npz")
    assert list(z["sizes"]) == [784, 12, 8, 10]
    state = RunFolder(tmp_path / "run").load()
    model, params = build_model(state.config, state=state)
    x = load_dataset("embedded").x_test[:100].astype(np.float64)
    assert rel(forward({k: z[k] for k in z.files if k[0] in "Wb"}, x), model.forward(params, x)[0]) < 1e-10


def test_a_run_still_training_exports_its_last_checkpoint_and_says_so(merged_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "running"
    shutil.copytree(merged_run, run)
    (run / "summary.json").unlink()  # what a run in progress looks like
    cfg = json.loads((run / "config.json").read_text())
    assert main(["export", str(run), "--out", str(tmp_path / "e.npz")]) == 0
    out = capsys.readouterr().out
    assert f"the run is not finished (epoch 1 of {cfg['epochs']})" in out
    assert not json.loads(str(np.load(tmp_path / "e.npz")["meta"]))["finished"]


def test_bad_input_exit_2_one_line_no_partial_file(merged_run, tmp_path, capsys):
    import shutil

    def refused(run, out, *extra, says):
        assert main(["export", str(run), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err, err
        return err

    refused(tmp_path / "nothing", tmp_path / "a.npz", says=str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", tmp_path / "a.npz", says="no checkpoint")
    bad = tmp_path / "bad"
    shutil.copytree(merged_run, bad)
    (bad / "checkpoint.prev.npz").unlink(missing_ok=True)
    (bad / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really")
    refused(bad, tmp_path / "a.npz", says="unreadable checkpoint")
    assert (bad / "checkpoint.npz").is_file()  # a reader leaves the folder as it is
    (tmp_path / "afile").write_text("x")
    refused(merged_run, tmp_path / "afile" / "e.npz", says="cannot write")
    (tmp_path / "exists.npz").write_bytes(b"keep me")
    refused(merged_run, tmp_path / "exists.npz", says="--force")
    assert (tmp_path / "exists.npz").read_bytes() == b"keep me"
    assert not list(tmp_path.glob("**/.a.npz*")) and not (tmp_path / "a.npz").exists()
    assert main(["export", str(merged_run), "--out", str(tmp_path / "exists.npz"), "--force"]) == 0


@pytest.mark.parametrize("method", ["baseline", "dlra"])
def test_a_cnn_run_exports_a_narrower_plain_cnn_with_the_runs_logits(tmp_path, method):
    """--model cnn: the file holds K1, K2, W3, W4 and biases of the channel counts left, which models.cnn.CNN runs
    to the run's own logits (float64); DLRA with a loose tau_cos so that channels merge."""
    from numpy_dlra.experiments.build import build_model
    from numpy_dlra.experiments.run_folder import RunFolder
    from numpy_dlra.models.cnn import CNN
    run = tmp_path / "cnn"
    extra = dict(tau_cos=0.6, tau_euc=100.0, lambda1=200.0, probe_size=16) if method == "dlra" else {}
    data = load_dataset("embedded")
    data = dataclasses.replace(data, x_train=data.x_train[:600], y_train=data.y_train[:600], x_val=data.x_val[:100],
                               y_val=data.y_val[:100], x_test=data.x_test[:100], y_test=data.y_test[:100])
    train(TrainConfig(model="cnn", method=method, data="embedded", epochs=1, batch_size=100, dtype="float64",
                      cnn_widths=(8, 8, 16), grad_noise_eta=0.0, **extra), run, progress=False, log=lambda m: None,
          dataset=data)
    assert main(["export", str(run), "--out", str(tmp_path / "c.npz"), "--dtype", "float64"]) == 0
    with np.load(tmp_path / "c.npz") as z:
        arrays, sizes, meta = {k: z[k] for k in z.files if k not in ("sizes", "meta")}, z["sizes"], json.loads(str(z["meta"]))
    assert meta["model"] == "cnn" and list(sizes) == meta["sizes"]
    plain = CNN((28, 28, 1), 10, widths=tuple(int(w) for w in sizes[1:4]))
    state = RunFolder(run).load(repair=False)
    model, params = build_model(state.config, state=state)
    x = data.x_test[:50].reshape(50, -1).astype(np.float64)
    np.testing.assert_allclose(plain.forward(arrays, x)[0], model.forward(params, x)[0], rtol=1e-9, atol=1e-9)
    from numpy_dlra.experiments.export import cnn_forward  # docs/usage.md's recipe for a CNN file
    np.testing.assert_allclose(cnn_forward(arrays, x, meta["input_shape"]), model.forward(params, x)[0], rtol=1e-9,
                               atol=1e-9)
    if method == "dlra":
        assert meta["params"]["exported"] < meta["params"]["dense"] and sum(sizes[1:4]) < 8 + 8 + 16
        assert main(["export", str(run), "--out", str(tmp_path / "m.npz"), "--dtype", "float64", "--channel-maps"]) == 0
        with np.load(tmp_path / "m.npz") as z:
            mapped = {k: z[k] for k in z.files if k not in ("sizes", "meta")}
        np.testing.assert_allclose(cnn_forward(mapped, x, (28, 28, 1)), model.forward(params, x)[0], rtol=1e-9, atol=1e-9)
    else:
        assert main(["export", str(run), "--out", str(tmp_path / "m.npz"), "--channel-maps"]) == 2  # no maps to keep
        assert not (tmp_path / "m.npz").exists()
