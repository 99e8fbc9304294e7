"""cupy.cuda.runtime stand-in: a single fake device."""
is_hip = False
_TOTAL_MEM = 16 * 2**30  # a nominal figure: nothing is allocated on any device


class CUDARuntimeError(RuntimeError):
    pass


def getDeviceCount():
    return 1


def getDevice():
    return 0


def _check(device):
    if device != 0:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")


def getDeviceProperties(device):
    _check(device)
    return {"name": b"fake GPU (NumPy stand-in)", "totalGlobalMem": _TOTAL_MEM, "major": 0, "minor": 0,
            "multiProcessorCount": 1}


def memGetInfo():
    return _TOTAL_MEM, _TOTAL_MEM


def deviceSynchronize():
    pass


def runtimeGetVersion():
    return 0


def driverGetVersion():
    return 0
