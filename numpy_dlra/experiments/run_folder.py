"""One run = one folder; this module is the only one that reads or writes a run's files.

- ``config.json``    the TrainConfig;
- ``metrics.jsonl``  one line per epoch (see :func:`numpy_dlra.experiments.train.train`);
- ``merges.jsonl``   (dlra) one line per fusion: step, layer, axis, kept and dropped index, r, s,
                     cos, d_euc, the layer's shape after it, probe_change;
- ``checkpoint.npz`` after every epoch: the parameters, Adam's state, P and Q, FN's constants, the
                     closest pairs, every generator's state and the metrics so far -- all a resumed
                     run needs to continue bit for bit;
- ``summary.json``   at the end.

Every whole-file write is atomic (a temporary file renamed over the old one), so a run killed at
any moment leaves the previous checkpoint or the new one, never a torn file; metrics.jsonl and
merges.jsonl are rewritten from the checkpoint's history when a run resumes.
"""
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.fetch import atomic_write_bytes
from ..dlra.layer import LayerFactors
from ..errors import UserError
from ..nn.backend import to_numpy
from .config import TrainConfig

_META = "__meta__"
FORMAT = 1


@dataclass
class RunState:
    """What a checkpoint holds. factors, fn_k and pairs are None for the dense models."""

    config: TrainConfig
    params: dict
    opt_state: dict  # {"t": int, "m": {...}, "v": {...}}
    rng_states: dict  # generator name -> bit_generator.state
    epoch: int
    step: int
    history: list  # the metrics.jsonl records so far
    factors: list = None  # LayerFactors per layer (fn, dlra)
    fn_k: list = None  # FN's k per layer
    pairs: list = None  # ClosestPairs.state() (dlra)


def save_checkpoint(path, arrays, meta):
    """Write `arrays` (dict name -> array, NumPy or CuPy) and JSON-able `meta` atomically to `path`."""
    buf = io.BytesIO()
    payload = {k: to_numpy(a) for k, a in arrays.items()}
    payload[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buf, **payload)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path):
    """(arrays, meta) from a file written by :func:`save_checkpoint`; UserError if missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != _META}
            meta = json.loads(z[_META].tobytes().decode())
    except FileNotFoundError:
        raise UserError(f"{path}: no checkpoint here (nothing to resume)") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: unreadable checkpoint ({exc}); delete the run folder and start again") from None
    return arrays, meta


def _prefixed(arrays, prefix):
    return {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}


class RunFolder:
    def __init__(self, path):
        self.path = Path(path)
        self.checkpoint = self.path / "checkpoint.npz"
        self.metrics = self.path / "metrics.jsonl"
        self.merges = self.path / "merges.jsonl"

    def check_new(self):
        """UserError unless the folder is absent or empty (a new run never mixes with old files)."""
        p = self.path
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise UserError(f"--out {p}: already exists and is not an empty folder; pass --resume to continue "
                            "the run there, or choose a new folder")

    def load(self, cfg=None):
        """The RunState of the last checkpoint. With `cfg`, check that it describes the same run
        (only ``epochs`` may differ) and raise UserError naming the differences otherwise."""
        arrays, meta = load_checkpoint(self.checkpoint)
        saved = TrainConfig.from_dict(meta["config"])
        if cfg is not None:
            a, b = saved.to_dict(), cfg.to_dict()
            diff = [k for k in a if k != "epochs" and a[k] != b[k]]
            if diff:
                detail = ", ".join(f"{k}: run has {a[k]!r}, flags give {b[k]!r}" for k in diff)
                raise UserError(f"{self.checkpoint}: --resume with a different configuration ({detail}); "
                                "only --epochs may change when resuming")
        struct = _prefixed(arrays, "struct/")
        factors = [LayerFactors.from_arrays(struct, l) for l in range(1, len(saved.sizes))] if struct else None
        opt_state = {"t": meta["adam_t"], "m": _prefixed(arrays, "adam_m/"), "v": _prefixed(arrays, "adam_v/")}
        return RunState(saved, _prefixed(arrays, "param/"), opt_state, meta["rng"], meta["epoch"], meta["step"],
                        meta["history"], factors, meta.get("fn_k"), meta.get("pairs"))

    def save(self, state):
        """Write the checkpoint of `state` (after an epoch), atomically."""
        arrays = {f"param/{k}": v for k, v in state.params.items()}
        arrays.update({f"adam_m/{k}": v for k, v in state.opt_state["m"].items()})
        arrays.update({f"adam_v/{k}": v for k, v in state.opt_state["v"].items()})
        meta = {"format": FORMAT, "config": state.config.to_dict(), "epoch": state.epoch, "step": state.step,
                "adam_t": state.opt_state["t"], "rng": state.rng_states, "history": state.history}
        if state.factors is not None:
            for l, f in enumerate(state.factors, start=1):
                arrays.update({f"struct/{k}": v for k, v in f.arrays(l).items()})
            meta["fn_k"] = state.fn_k
        if state.pairs is not None:
            meta["pairs"] = state.pairs
        save_checkpoint(self.checkpoint, arrays, meta)

    def start(self, cfg, history, step, merges):
        """Create the folder, write config.json, and make metrics.jsonl (and merges.jsonl, with
        `merges`) hold exactly what the checkpoint's history covers: nothing after `step`."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_json("config.json", cfg.to_dict())
        atomic_write_bytes(self.metrics, "".join(json.dumps(r) + "\n" for r in history).encode())
        if merges:
            kept = []
            if self.merges.exists():
                kept = [ln for ln in self.merges.read_text().splitlines(keepends=True)
                        if ln.strip() and json.loads(ln)["step"] <= step]
            atomic_write_bytes(self.merges, "".join(kept).encode())

    def append(self, path, records):
        with open(path, "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))

    def write_json(self, name, obj):
        atomic_write_bytes(self.path / name, (json.dumps(obj, indent=2) + "\n").encode())

    def summary(self):
        """The summary.json of a finished run, or None."""
        try:
            return json.loads((self.path / "summary.json").read_text())
        except (OSError, ValueError):
            return None


def load_params(run_dir):
    """The parameters saved in `run_dir`'s checkpoint, as a dict ``W{l}``, ``b{l}`` (...) -> array."""
    return RunFolder(run_dir).load().params
