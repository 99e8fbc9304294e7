"""Many runs, one folder each, on local processes or a Dask cluster; rerunning skips what is done.

A run is (name, TrainConfig) with its folder ``DIR/runs/<name>``. :func:`run_all` trains every run
that is not finished (``summary.json`` with the same configuration and all its epochs), resuming
an interrupted one from its checkpoint, so a killed runner loses nothing finished.

- local (``jobs`` J): J runs at once, each a ``python -m numpy_dlra train`` process with
  cores // J BLAS threads (at most OMP_NUM_THREADS when that is set; passed through the environment,
  so the processes do not oversubscribe the cores). The flags are those of the configuration: every TrainConfig field is a flag.
- Dask (``scheduler`` ADDRESS, optional extra ``cluster``): each run is a task that trains in the
  worker's process (start workers with ``--nthreads 1`` and OMP_NUM_THREADS / OPENBLAS_NUM_THREADS
  set as their cores allow). A task whose worker dies is retried, and resumes from its checkpoint.
"""
import dataclasses
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import UserError
from .config import TrainConfig, flag
from .run_folder import RunFolder
from .train import same_run

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def is_finished(folder, cfg):
    s = RunFolder(folder).summary()
    return bool(s and s["final"] and s["final"]["epoch"] == cfg.epochs
                and same_run(TrainConfig.from_dict(s["config"]), cfg))


def train_argv(cfg, folder):
    """The `numpy-dlra train` command line of `cfg` (every field is a flag) writing `folder`."""
    argv = [sys.executable, "-m", "numpy_dlra", "train", "--no-progress", "--out", str(folder)]
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if not f.metadata["flag"] or v is None:  # filled in from the data; sizes None: from your own data
            continue
        if f.name in ("sizes", "cnn_widths"):
            v = ",".join(map(str, v))
        elif f.name == "layer_ranks":
            v = ",".join(f"{a}:{b}" for a, b in v)
        argv += [flag(f.name), str(v)]
    if RunFolder(folder).has_checkpoint():
        argv.append("--resume")
    return argv


def _local(cfg, folder, threads, log, poll=2.0):
    """Train one run in its own process; while it runs, say each epoch it finishes (from its metrics.jsonl)."""
    env = dict(os.environ, **{k: str(threads) for k in THREAD_VARS})
    Path(folder).parent.mkdir(parents=True, exist_ok=True)
    metrics, seen = Path(folder) / "metrics.jsonl", _epochs_done(Path(folder) / "metrics.jsonl")
    with open(Path(folder).parent / f"{Path(folder).name}.log", "a") as out:
        proc = subprocess.Popen(train_argv(cfg, folder), env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                rc = proc.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                rc = None
            for rec in _epochs_done(metrics)[len(seen):]:
                log(f"{folder}: epoch {rec['epoch']}/{cfg.epochs}, test {rec['test_acc']:.2f} %, {rec['seconds']:.0f} s")
                seen.append(rec)
            if rc is not None:
                break
    log(f"{folder}: {'done' if rc == 0 else f'failed (exit {rc}; see {folder}.log)'}")
    return rc


def _epochs_done(metrics):
    """The records of a run's metrics.jsonl so far (a line still being written is left for the next look)."""
    out = []
    try:
        lines = metrics.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            break
    return out


def threads_per_job(jobs):
    """BLAS threads for each of `jobs` processes: cores // jobs, capped by OMP_NUM_THREADS (or
    OPENBLAS_NUM_THREADS) when the caller set it, so that a runner told to use one thread does."""
    cap = min((int(os.environ[k]) for k in THREAD_VARS[:2] if os.environ.get(k, "").isdigit()), default=None)
    n = max(1, (os.cpu_count() or 1) // jobs)
    return max(1, min(n, cap)) if cap else n


def train_in_worker(cfg_dict, folder):
    """A Dask task: train (or resume, or reuse) one run in this process; returns its final epoch."""
    from .train import train_or_reuse

    s = train_or_reuse(TrainConfig.from_dict(cfg_dict), folder, log=lambda m: None)
    return s["final"]["epoch"]


def finished_runs(runs, out, log=print):
    """``reproduce --no-train``: the folders of the (name, cfg) runs already finished in ``out/runs``,
    training nothing; the runs that are missing or unfinished are named in the log."""
    folders = {name: Path(out) / "runs" / name for name, _ in runs}
    done = {name: folders[name] for name, cfg in runs if is_finished(folders[name], cfg)}
    missing = [name for name, _ in runs if name not in done]
    log(f"{len(done)} of {len(runs)} runs finished; --no-train: nothing is trained"
        + (f"; left out (missing or unfinished): {', '.join(missing)}" if missing else ""))
    return done


def run_all(runs, out, jobs=1, scheduler=None, log=print):
    """Train every (name, cfg) of `runs` that is not finished into ``out/runs/<name>``; returns the folders."""
    folders = {name: Path(out) / "runs" / name for name, _ in runs}
    todo = [(name, cfg) for name, cfg in runs if not is_finished(folders[name], cfg)]
    log(f"{len(runs) - len(todo)} of {len(runs)} runs finished before; {len(todo)} to train")
    if todo and scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise UserError("--scheduler needs Dask: pip install 'numpy_dlra[cluster]'") from None
        try:
            client = Client(scheduler, timeout=30)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"--scheduler {scheduler}: cannot connect ({exc}); check the address and that the "
                            "scheduler runs") from None
        with client:
            futures = [client.submit(train_in_worker, cfg.to_dict(), str(folders[name]), key=f"numpy-dlra-{name}",
                                     retries=3, pure=False) for name, cfg in todo]
            failed = []
            for (name, _), fut in zip(todo, futures):
                try:
                    fut.result()
                    log(f"{folders[name]}: done (dask)")
                except Exception as exc:  # noqa: BLE001 - a worker's error (or its death, 4 times): name the run
                    failed.append(name)
                    log(f"{folders[name]}: failed on the cluster ({type(exc).__name__}: {exc})")
            if failed:
                raise UserError(f"{len(failed)} run(s) failed on the cluster: {', '.join(failed)}; rerun the same "
                                "command to resume them")
    elif todo:
        threads = threads_per_job(jobs)
        with ThreadPoolExecutor(jobs) as pool:
            codes = list(pool.map(lambda r: _local(r[1], folders[r[0]], threads, log), todo))
        failed = [name for (name, _), rc in zip(todo, codes) if rc != 0]
        if failed:
            raise UserError(f"{len(failed)} run(s) failed: {', '.join(failed)}; their logs are beside their folders "
                            "in " + str(Path(out) / "runs") + "; rerun the same command to resume")
    return folders
