"""A minimal progress bar on stderr (no dependency): shown only when stderr is a terminal."""
import sys
import time


class Progress:
    """``with Progress(total, desc) as bar: bar.update(1, loss=...)``; prints nothing if disabled."""

    def __init__(self, total, desc="", enabled=None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.desc, self.n = total, desc, 0
        self.start = self.last = time.perf_counter()

    def update(self, k=1, **info):
        self.n += k
        now = time.perf_counter()
        if self.enabled and (now - self.last > 0.1 or self.n == self.total):
            self.last = now
            frac = self.n / max(1, self.total)
            bar = "#" * int(30 * frac)
            rate = self.n / max(1e-9, now - self.start)
            extra = " ".join(f"{k}={v:.4g}" for k, v in info.items())
            self.stream.write(f"\r{self.desc} [{bar:<30}] {self.n}/{self.total} {rate:.1f}/s {extra}   ")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
