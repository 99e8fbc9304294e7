"""``numpy-dlra export RUN --out FILE.npz``: the trained network as a plain dense MLP (or CNN) of the reduced widths.

What DLRA buys is a smaller network; this takes it out of the run. The model folds itself
(:meth:`numpy_dlra.dlra.network.FactorizedMLP.export`: FN's scale, P and Q, Sec. 4.3's signed feature
groups; :meth:`numpy_dlra.models.mlp.MLP.export` for the baseline) and this module writes the file:

- ``W1 .. WL`` (n_l, n_{l-1}) and ``b1 .. bL`` (n_l,), float32 (or ``--dtype float64``);
- ``sizes`` (L + 1,) int64, the widths (input, G_1, ..., G_{L-1}, classes);
- ``meta``, a JSON string: the source run and its epoch, the method, the data's input scaling and
  shape, and three parameter counts: ``dense`` (the original network's), ``exported`` (this file's
  weights and biases) and ``factorized`` (W', b' and g: the count the paper and metrics.jsonl give).

Logits = W_L relu(... relu(W_1 x + b_1) ...) + b_L on inputs scaled as in training (docs/usage.md has
a ten-line NumPy forward that needs nothing else). A ``--model cnn`` run gives the plain CNN of the
channel counts left (:meth:`numpy_dlra.dlra.conv_network.FactorizedCNN.export`): ``K1`` (3, 3, C, G1),
``K2`` (3, 3, G1, G2), ``W3``, ``W4`` and the biases, ``sizes`` (H W C, G1, G2, G3, classes), which
:class:`numpy_dlra.models.cnn.CNN` runs. The file is written atomically: a failure leaves no partial file.
"""
import io
import json
from pathlib import Path

import numpy as np

from ..data.fetch import atomic_write_bytes
from ..errors import UserError
from .build import build_model, dense_model
from .run_folder import RunFolder


def export_arrays(model, params, dtype=np.float32, channel_maps=False):
    """(arrays, sizes) of the plain MLP (or CNN) that `model` with `params` computes, in `dtype`; ``channel_maps``:
    a CNN's connectors kept apart as 1 x 1 maps (FactorizedCNN.export)."""
    folded = model.export(params, channel_maps=True) if channel_maps else model.export(params)
    if "K1" in folded:  # a CNN: (H W C, G1, G2, G3, classes)
        sizes = [int(np.prod(model.input_shape)), folded["K1"].shape[3], folded["K2"].shape[3], folded["W3"].shape[0],
                 folded["W4"].shape[0]]
    else:
        L = len(folded) // 2
        sizes = [folded["W1"].shape[1]] + [folded[f"W{l}"].shape[0] for l in range(1, L + 1)]
    arrays = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in folded.items()}
    return arrays, sizes


def forward(arrays, x):
    """The plain MLP's logits (N, classes) for inputs x (N, sizes[0]): W_L relu(... relu(W_1 x + b_1) ...) + b_L."""
    L = sum(1 for k in arrays if k.startswith("W"))
    h = x
    for l in range(1, L + 1):
        h = h @ arrays[f"W{l}"].T + arrays[f"b{l}"]  # (N, n_{l-1}) @ (n_{l-1}, n_l) -> (N, n_l)
        if l < L:
            h = np.maximum(h, 0)
    return h


def cnn_forward(arrays, x, input_shape):
    """The exported CNN's logits (N, classes) for flat images x (N, H W C): conv 3x3 (K1), ReLU, [1 x 1 map M2],
    conv 3x3 (K2), ReLU, 2 x 2 max pool, [1 x 1 map M3], flatten, W3, ReLU, W4; 'valid' convolutions, channels last."""
    def conv(h, K, b):  # 'valid', stride 1: y[n, p, q, o] = sum_{i, j, c} h[n, p+i, q+j, c] K[i, j, c, o] + b[o]
        kh, kw = K.shape[:2]
        Ho, Wo = h.shape[1] - kh + 1, h.shape[2] - kw + 1
        return sum(h[:, i:i + Ho, j:j + Wo, :] @ K[i, j] for i in range(kh) for j in range(kw)) + b
    h = x.reshape((len(x),) + tuple(input_shape))
    h = np.maximum(conv(h, arrays["K1"], arrays["b1"]), 0)
    if "M2" in arrays:
        h = h @ arrays["M2"].T  # (N, H, W, G1) -> (N, H, W, n'_2): channels merged
    h = np.maximum(conv(h, arrays["K2"], arrays["b2"]), 0)
    N, H, W, C = h.shape
    h = h[:, :H // 2 * 2, :W // 2 * 2].reshape(N, H // 2, 2, W // 2, 2, C).max(axis=(2, 4))  # 2 x 2 max pool
    if "M3" in arrays:
        h = h @ arrays["M3"].T
    h = np.maximum(h.reshape(N, -1) @ arrays["W3"].T + arrays["b3"], 0)
    return h @ arrays["W4"].T + arrays["b4"]


def export_run(run, out, dtype="float32", force=False, log=print, channel_maps=False):
    """Write the plain MLP of the run folder `run` to `out` (.npz); returns its meta dict.

    UserError (exit status 2, nothing written) for: no run or checkpoint, a corrupt checkpoint, an existing
    `out` without `force`, an unwritable `out`.
    """
    run, out = Path(run), Path(out)
    if dtype not in ("float32", "float64"):
        raise UserError(f"--dtype {dtype!r}: choose float32 or float64")
    if out.exists() and not force:
        raise UserError(f"--out {out}: already exists; pass --force to overwrite it, or choose another file")
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give a file name such as {out / 'exported.npz'}")
    folder = RunFolder(run)
    if not folder.path.is_dir():
        raise UserError(f"{run}: no run folder here; give the --out folder of a `numpy-dlra train` run")
    state = folder.load(repair=False)  # UserError for a missing or corrupt checkpoint
    if folder.warning:
        log(f"warning: {folder.warning}")
    cfg = state.config
    summary = folder.summary()
    finished = bool(summary and summary["final"] and summary["final"]["epoch"] == state.epoch == cfg.epochs)
    if not finished:
        log(f"{run}: the run is not finished (epoch {state.epoch} of {cfg.epochs}): exporting its last "
            f"checkpoint, epoch {state.epoch}")
    model, params = build_model(cfg, state=state)
    if channel_maps and (cfg.model != "cnn" or cfg.method == "baseline"):
        raise UserError(f"--channel-maps: {run} is a --model {cfg.model} --method {cfg.method} run; the maps are the "
                        "connectors of a factorized CNN (--model cnn --method fn or dlra)")
    arrays, sizes = export_arrays(model, params, np.dtype(dtype), channel_maps)
    counts = {"dense": dense_model(cfg).param_count(),
              "exported": int(sum(a.size for a in arrays.values())),
              "factorized": model.param_count()}
    meta = {"source_run": str(run), "epoch": state.epoch, "finished": finished, "method": cfg.method,
            "input_scaling": cfg.input_scaling, "input_shape": list(cfg.input_shape or ()), "data": cfg.data,
            "data_sha256": cfg.data_sha256, "dtype": dtype, "sizes": sizes, "params": counts,
            "model": cfg.model, "channel_maps": sorted(k for k in arrays if k.startswith("M")),
            "forward": ("logits = W4 relu(W3 flatten(maxpool2x2(relu(conv3x3(relu(conv3x3(x, K1) + b1), K2) + b2))) + b3) "
                        "+ b4, images (H, W, C) channels last, 'valid' convolutions" if cfg.model == "cnn" else
                        "logits = W_L relu(... relu(W_1 x + b_1) ...) + b_L")}
    buf = io.BytesIO()
    np.savez(buf, **arrays, sizes=np.asarray(sizes, dtype=np.int64), meta=np.asarray(json.dumps(meta)))
    try:
        atomic_write_bytes(out, buf.getvalue())
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write it ({exc.strerror or exc}); choose a file in a folder you can "
                        "write to") from None
    return meta
