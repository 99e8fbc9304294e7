"""cupy.cuda stand-in: one device (id 0), streams and events that have nothing to wait for,
memory pools that report nothing."""
import time as _time

from . import runtime


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def use(self):
        if not 0 <= self.id < runtime.getDeviceCount():
            raise runtime.CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    def synchronize(self):
        pass

    @property
    def mem_info(self):
        return runtime.memGetInfo()

    def __enter__(self):
        self.use()
        return self

    def __exit__(self, *exc):
        return False

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id} (fake)>"


def get_device_id():
    return 0


def is_available():
    return True


class Stream:
    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = ptr

    def synchronize(self):
        pass

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    return Stream.null


class Event:
    """Records host time: elapsed times measure the NumPy stand-in, not a GPU."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None):
        self._t = _time.perf_counter()

    def synchronize(self):
        pass

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events."""
    return (end_event._t - start_event._t) * 1e3


class MemoryPool:
    """Allocations are NumPy's: the pool holds nothing."""

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_bytes(self):
        return 0

    def n_free_blocks(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass

    def set_limit(self, size=None, fraction=None):
        pass

    def get_limit(self):
        return 0


class PinnedMemoryPool(MemoryPool):
    pass


_memory_pool = MemoryPool()
_pinned_memory_pool = PinnedMemoryPool()
