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
any moment leaves the previous checkpoint or the new one, never a torn file. metrics.jsonl and
merges.jsonl grow by appended lines as the run trains; a resumed run rewrites metrics.jsonl from
the checkpoint's history and keeps of merges.jsonl the lines up to the checkpoint's step (a torn
last line is dropped).
- The checkpoint carries the sha256 of its arrays, and the one before it is kept as
  ``checkpoint.prev.npz``: a corrupt or missing checkpoint is detected and the previous one used,
  with a warning.
- A run killed before its first checkpoint left only its start files (config.json, empty
  metrics.jsonl); such a folder may be started again (or "resumed": it starts over).
- ``.lock`` (an advisory lock held while a process trains the run) makes a second process pointed
  at the same folder refuse, so parallel jobs never interleave one run's files.
"""
import contextlib
import fcntl
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import faults
from ..data.fetch import arrays_sha256, atomic_write_bytes
from ..dlra.layer import LayerFactors
from ..errors import UserError
from ..nn.backend import to_numpy
from .config import TrainConfig

_META = "__meta__"
FORMAT = 1
START_FILES = {"config.json", "metrics.jsonl", "merges.jsonl", ".lock"}  # what a run writes before its first epoch


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
    """Write `arrays` (dict name -> array, NumPy or CuPy) and JSON-able `meta` atomically to `path`;
    meta gains ``sha256``, the checksum of the arrays, which :func:`load_checkpoint` verifies."""
    buf = io.BytesIO()
    payload = {k: to_numpy(a) for k, a in arrays.items()}
    meta = dict(meta, sha256=arrays_sha256(payload))
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
    except (OSError, ValueError, KeyError, EOFError, NotImplementedError, zipfile.BadZipFile, json.JSONDecodeError,
            UnicodeDecodeError) as exc:
        raise UserError(f"{path}: unreadable checkpoint ({exc}); delete the run folder and start again") from None
    if "sha256" in meta and arrays_sha256(arrays) != meta["sha256"]:
        raise UserError(f"{path}: unreadable checkpoint (its arrays do not match their sha256); "
                        "delete the run folder and start again")
    return arrays, meta


def _prefixed(arrays, prefix):
    return {k[len(prefix):]: a for k, a in arrays.items() if k.startswith(prefix)}


class RunFolder:
    warning = None  # set by load() when it fell back to the previous checkpoint

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoint = self.path / "checkpoint.npz"
        self.previous = self.path / "checkpoint.prev.npz"
        self.metrics = self.path / "metrics.jsonl"
        self.merges = self.path / "merges.jsonl"

    def has_checkpoint(self):
        """Whether there is a checkpoint to resume from (the latest, or the one before it)."""
        return self.checkpoint.is_file() or self.previous.is_file()

    def not_started(self):
        """True when the folder is absent, empty, or holds only what a run writes before its first
        checkpoint (and temporary files of interrupted writes): a run killed in its first epoch."""
        p = self.path
        if not p.exists():
            return True
        if not p.is_dir():
            return False
        names = {f.name for f in p.iterdir() if not (f.name.startswith(".") and f.name.endswith(".tmp"))}
        # metrics.jsonl gets its first line only after the first checkpoint: a run with results is never "not started"
        return names <= START_FILES and (not self.metrics.exists() or self.metrics.stat().st_size == 0)

    def check_new(self):
        """UserError unless the folder may hold a new run: absent, empty, or a run killed before its
        first checkpoint (a new run never mixes with another run's results)."""
        if not self.not_started():
            raise UserError(f"--out {self.path}: already exists and is not an empty folder; pass --resume to continue "
                            "the run there, or choose a new folder")

    @contextlib.contextmanager
    def lock(self):
        """Hold ``.lock`` while the block runs; UserError if another process holds it."""
        self.create()
        try:
            fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"--out {self.path}: cannot open its lock file .lock ({exc.strerror or exc}); choose a "
                            "folder you can write to") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise UserError(f"--out {self.path}: another process (pid {other}) is training this run; wait for "
                                "it to finish, or choose another folder") from None
            except OSError as exc:  # e.g. a network file system without locks
                raise UserError(f"--out {self.path}: cannot lock this folder ({exc.strerror or exc}); put the runs on "
                                "a file system that supports flock") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the lock (so does the death of the process)

    def create(self):
        """Make the folder; UserError naming --out if that is impossible."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--out {self.path}: cannot create this folder ({exc.strerror or exc}); "
                            "choose a folder you can write to") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise UserError(f"--out {self.path}: this folder is not writable; choose a folder you can write to")

    def load(self, cfg=None, repair=True):
        """The RunState of the last checkpoint. With `cfg`, check that it describes the same run (only
        ``epochs`` and the settings its method never reads may differ: ``TrainConfig.run_key``) and raise
        UserError naming the differences otherwise. The run goes on with its saved configuration.
        A bad checkpoint falls back to the previous one (``warning`` says so); with `repair` the bad one is
        moved aside (as training does), without it the folder is left as it is (readers such as export)."""
        try:
            arrays, meta = load_checkpoint(self.checkpoint)
        except UserError as exc:
            if not self.previous.is_file():
                raise
            arrays, meta = load_checkpoint(self.previous)
            self.warning = f"{exc}; using the previous checkpoint (epoch {meta['epoch']}) instead"
            if repair and self.checkpoint.exists():  # kept for a look, but never again rotated over the good previous one
                os.replace(self.checkpoint, self.path / "checkpoint.bad.npz")
                self.warning += "; the bad one is now checkpoint.bad.npz"
        saved = TrainConfig.from_dict(meta["config"])
        if cfg is not None:
            a, b = saved.run_key(), cfg.run_key()
            diff = [k for k in {**a, **b} if a.get(k, "(unused)") != b.get(k, "(unused)")]
            if a["data_sha256"] and a["data_sha256"] == b["data_sha256"] and "data" in diff:
                diff.remove("data")  # your own data, moved or copied: the same bytes, the same run
            if "data_sha256" in diff:
                what = "has changed since" if a["data"] == b["data"] else f"is not the {a['data']} of"
                raise UserError(f"{self.checkpoint}: --data {b['data']} {what} the run (sha256 {a['data_sha256']} "
                                f"when it started, {b['data_sha256']} now); resume on the run's own data, or "
                                "start a new run in another folder")
            if diff:
                detail = ", ".join(f"{k}: run has {a.get(k, '(unused)')!r}, flags give {b.get(k, '(unused)')!r}"
                                   for k in diff)
                raise UserError(f"{self.checkpoint}: --resume with a different configuration ({detail}); "
                                "only --epochs may change when resuming")
        struct = _prefixed(arrays, "struct/")
        n_layers = sum(1 for k in struct if k.startswith("p_idx"))
        factors = [LayerFactors.from_arrays(struct, l) for l in range(1, n_layers + 1)] if struct else None
        opt_state = {"t": meta["adam_t"], "m": _prefixed(arrays, "adam_m/"), "v": _prefixed(arrays, "adam_v/")}
        return RunState(saved, _prefixed(arrays, "param/"), opt_state, meta["rng"], meta["epoch"], meta["step"],
                        meta["history"], factors, meta.get("fn_k"), meta.get("pairs"))

    @contextlib.contextmanager
    def writing(self, what):
        """Turn a failed write (a full disk, a folder gone read-only) into a UserError that names it."""
        try:
            yield
        except OSError as exc:
            raise UserError(f"{self.path / what}: cannot write it ({exc.strerror or exc}); the last checkpoint is "
                            "intact: free some space and rerun with --resume") from None

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
        tmp = self.path / ".checkpoint.new.npz.tmp"
        with self.writing("checkpoint.npz"):
            save_checkpoint(tmp, arrays, meta)  # complete on disk before the old one moves
            faults.reached("checkpoint-write")
            if self.checkpoint.is_file():
                os.replace(self.checkpoint, self.previous)
            faults.reached("checkpoint-swap")
            os.replace(tmp, self.checkpoint)

    def start(self, cfg, history, step, merges):
        """Create the folder, write config.json, and make metrics.jsonl (and merges.jsonl, with
        `merges`) hold exactly what the checkpoint's history covers: nothing after `step`."""
        self.create()
        self.write_json("config.json", cfg.to_dict())
        with self.writing("metrics.jsonl"):
            atomic_write_bytes(self.metrics, "".join(json.dumps(r) + "\n" for r in history).encode())
        if merges:
            kept = []
            if self.merges.exists():
                for ln in self.merges.read_text().splitlines(keepends=True):
                    try:
                        rec = json.loads(ln)
                    except ValueError:  # a line torn by a kill or a full disk: nothing after it was written whole
                        break
                    if rec["step"] <= step:
                        kept.append(ln if ln.endswith("\n") else ln + "\n")
            with self.writing("merges.jsonl"):
                atomic_write_bytes(self.merges, "".join(kept).encode())

    def append(self, path, records):
        with self.writing(Path(path).name), open(path, "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))

    def write_json(self, name, obj):
        with self.writing(name):
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
