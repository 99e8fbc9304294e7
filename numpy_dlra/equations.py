"""The reference equations of the method (paper Secs. 3-4), one small pure function each:
``from numpy_dlra import equations as eq``. The module lives in :mod:`numpy_dlra.dlra.equations`; this is
its documented import, with the same public names."""
from .dlra.equations import *  # noqa: F401,F403
