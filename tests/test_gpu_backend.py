"""The CuPy backend (``--device cuda``): specified on any machine through a stand-in CuPy, and on a GPU.

tests/fake_gpu plays ``cupy``/``cupyx`` over NumPy and, like CuPy, refuses every implicit conversion
between host and device arrays, so a NumPy array slipping into a step fails here, not on a GPU.
Where CuPy and a GPU are present, the ``real`` variants run the same checks against them.
Since the stand-in computes with NumPy, a GPU-path run without dropout and noise (the only draws
that differ between the backends) must equal the CPU run bit for bit.
"""
import importlib.util
import json
import sys

import numpy as np
import pytest

from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.dlra.algorithm1 import train_step
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.errors import UserError
from numpy_dlra.experiments.build import build_model
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.run_folder import RunFolder
from numpy_dlra.experiments.train import make_rngs, train
from numpy_dlra.nn.backend import array_module, device_rng, module_for
from numpy_dlra.nn.optim import Adam

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from fake_gpu.fixture import fake_cupy  # noqa: E402,F401 - a fixture

MERGING = {"lambda1": 200.0, "tau_cos": 0.2, "tau_euc": 10.0}  # so that one short epoch merges


def _real_gpu():
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed"
    try:
        import cupy

        return None if cupy.cuda.runtime.getDeviceCount() > 0 else "CuPy finds no GPU"
    except Exception as exc:  # noqa: BLE001
        return f"CuPy cannot use a GPU here ({type(exc).__name__})"


@pytest.fixture(params=["fake", "real"])
def cupy_module(request):
    """The fake CuPy (always) and the real one (skipped, with the reason, where there is no GPU)."""
    if request.param == "fake":
        return request.getfixturevalue("fake_cupy")
    reason = _real_gpu()
    if reason:
        pytest.skip(reason)
    import cupy

    return cupy


@pytest.fixture(scope="module")
def data():
    return load_dataset("embedded")


def _cfg(method, **kw):
    extra = MERGING if method == "dlra" else {}
    base = {"sizes": (784, 24, 24, 10), "batch_size": 500, "epochs": 1, "data": "embedded", "probe_size": 16}
    return TrainConfig(method=method, **(base | extra | kw))


def test_device_cuda_without_cupy_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    with pytest.raises(UserError, match=r"--device cuda: CuPy is not installed.*numpy_dlra\[gpu\]"):
        module_for("cuda")


def test_the_cli_refuses_cuda_without_cupy_with_exit_2(tmp_path, monkeypatch, capsys):
    from numpy_dlra.cli import main

    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main(["train", "--device", "cuda", "--data", "embedded", "--out", str(tmp_path / "r")]) == 2
    assert "CuPy is not installed" in capsys.readouterr().err
    assert not (tmp_path / "r").exists(), "nothing is written before the device is known to work"


@pytest.mark.parametrize("method,rules", [("baseline", {}), ("fn", {}), ("dlra", {}),
                                          ("dlra", {"fuse_ratio": "sum", "merge_pairs": "any", "tau_euc": 0.5}),
                                          ("dlra", {"model": "cnn", "cnn_widths": (6, 6, 16), "tau_cos": 0.6}),
                                          ("dlra", {"model": "cnn", "cnn_widths": (4, 4, 8), "tau_cos": 0.6, "conv_columns": "coord"})])
def test_a_gpu_run_without_dropout_and_noise_is_the_cpu_run(tmp_path, data, fake_cupy, method, rules):
    kw = {"dropout": 0.0, "grad_noise_eta": 0.0} | rules
    train(_cfg(method, **kw), tmp_path / "cpu", progress=False, log=lambda m: None, dataset=data)
    train(_cfg(method, device="cuda", **kw), tmp_path / "gpu", progress=False, log=lambda m: None, dataset=data)
    cpu, gpu = RunFolder(tmp_path / "cpu").load(), RunFolder(tmp_path / "gpu").load()
    for k in cpu.params:
        assert type(gpu.params[k]) is np.ndarray, "the checkpoint holds host arrays"
        np.testing.assert_array_equal(cpu.params[k], gpu.params[k])
    strip = ("seconds", "train_seconds")
    rows = [[{k: v for k, v in json.loads(ln).items() if k not in strip}
             for ln in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("cpu", "gpu")]
    assert rows[0] == rows[1]
    if method == "dlra":
        assert rows[0][0]["merges"] >= 3, "the run must merge for the test to cover merges on the device"


@pytest.mark.parametrize("method", ["baseline", "fn", "dlra"])
def test_no_array_leaves_the_device_during_a_step(data, cupy_module, method):
    cfg = TrainConfig(method=method, sizes=(784, 24, 24, 10), device="cuda")  # the paper's thresholds: no merge
    xp = module_for("cuda")
    rngs = make_rngs(0)
    model, params = build_model(cfg, rng=rngs["init"], xp=xp)
    assert all(array_module(p) is xp for p in params.values())
    rngs |= {"dropout": device_rng(xp, 0, 2, 1), "noise": device_rng(xp, 0, 3, 1)}
    opt = Adam()
    state = opt.init(params)
    pairs = ClosestPairs(model, FusionRules.from_config(cfg)) if method == "dlra" else None
    if pairs:
        pairs.refresh(params)
    x, y = xp.asarray(data.x_train[:500]), xp.asarray(data.y_train[:500])
    counting = getattr(xp, "_transfers", None)
    if counting is not None:
        xp._reset_transfers()
    r = train_step(model, params, opt, state, x, y, cfg, rngs, pairs)
    assert not r.merges
    assert all(array_module(p) is xp for p in params.values())
    assert all(array_module(m) is xp for m in state["m"].values())
    if counting is not None:
        assert xp._transfers["arrays"] == 0, "an array was copied back to the host inside a step"


def test_a_gpu_run_resumed_after_an_epoch_equals_the_uninterrupted_run(tmp_path, data, cupy_module):
    """CuPy cannot save a generator's state: the device's dropout and noise generators are re-seeded
    from (seed, stream, epoch) every epoch, so a resume draws what the uninterrupted run drew."""
    cfg2 = _cfg("dlra", device="cuda", epochs=2)
    train(cfg2, tmp_path / "whole", progress=False, log=lambda m: None, dataset=data)
    train(_cfg("dlra", device="cuda", epochs=1), tmp_path / "split", progress=False, log=lambda m: None, dataset=data)
    train(cfg2, tmp_path / "split", resume=True, progress=False, log=lambda m: None, dataset=data)
    a, b = RunFolder(tmp_path / "whole").load(), RunFolder(tmp_path / "split").load()
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert [r["test_acc"] for r in a.history] == [r["test_acc"] for r in b.history]


def test_the_device_draws_are_seeded_by_seed_stream_and_epoch(cupy_module):
    xp = module_for("cuda")
    a = device_rng(xp, 0, 2, 1).random(8, dtype=np.float32)
    b = device_rng(xp, 0, 2, 2).random(8, dtype=np.float32)
    c = device_rng(xp, 0, 2, 1).random(8, dtype=np.float32)
    assert array_module(a) is xp
    assert (a.get() == c.get()).all() and not (a.get() == b.get()).all()


# --- the fused kernels (nn/kernels.py): a real GPU only -------------------------------------------

@pytest.fixture
def real_cupy():
    reason = _real_gpu()
    if reason:
        pytest.skip(reason)
    import cupy

    return cupy


def test_the_stand_in_has_no_fused_kernels_so_the_fake_runs_check_the_unfused_path(fake_cupy):
    from numpy_dlra.nn.kernels import adam_kernel, noise_kernel

    assert adam_kernel(fake_cupy) is None and noise_kernel(fake_cupy) is None
    assert adam_kernel(np) is None and noise_kernel(np) is None


def _params(xp, dtype, sizes=((500, 784), (500,), (1,), (7, 3), (10, 499))):
    g = np.random.default_rng(5)
    return {f"p{i}": xp.asarray(g.standard_normal(s).astype(dtype)) for i, s in enumerate(sizes)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_is_bitwise_the_unfused_update_and_the_cpu_one(real_cupy, monkeypatch, dtype):
    """Compiled with --fmad=false, the one-launch update rounds every operation as the 11 launches do,
    and, every operation being IEEE (sqrt and division too), as NumPy does on the CPU."""
    from numpy_dlra.nn import kernels

    runs = []
    for xp, fused in ((real_cupy, True), (real_cupy, False), (np, False)):
        monkeypatch.setattr(kernels, "FUSED", fused)
        assert (kernels.adam_kernel(xp) is not None) == fused
        params, opt = _params(xp, dtype), Adam()
        state = opt.init(params)
        for t in range(3):  # three steps: the bias corrections change with t
            grads = {k: v * dtype(0.5 - 0.25 * t) + dtype(0.01) for k, v in _params(xp, dtype).items()}
            opt.step(params, grads, state)
        to_host = (lambda a: a.get()) if xp is real_cupy else np.asarray
        runs.append({k: to_host(a) for k, a in {**params, **{f"m{k}": m for k, m in state["m"].items()},
                                                   **{f"v{k}": v for k, v in state["v"].items()}}.items()})
    for other in runs[1:]:
        for k in runs[0]:
            np.testing.assert_array_equal(runs[0][k], other[k], err_msg=k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_noise_is_bitwise_the_unfused_noise(real_cupy, monkeypatch, dtype):
    """The same uniforms, paired as _box_muller pairs them (odd sizes too), transformed and added in one launch."""
    from numpy_dlra.nn import kernels
    from numpy_dlra.nn.fast import add_gradient_noise

    out = []
    for fused in (True, False):
        monkeypatch.setattr(kernels, "FUSED", fused)
        grads = _params(real_cupy, dtype)
        sigma = add_gradient_noise(grads, 3, 1e-2, device_rng(real_cupy, 0, 3, 1))
        out.append({k: g.get() for k, g in grads.items()})
    base = {k: g.get() for k, g in _params(real_cupy, dtype).items()}
    for k in out[0]:
        np.testing.assert_array_equal(out[0][k], out[1][k], err_msg=k)
    z = np.concatenate([(out[0][k] - base[k]).ravel() for k in base]) / sigma  # the draws, ~N(0, 1)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
