"""cupy.linalg stand-in: numpy.linalg behind the fake's unwrap / refuse / wrap rules."""
import numpy as _np

from . import _delegating_getattr

__getattr__ = _delegating_getattr(_np.linalg, "cupy.linalg")
