"""The reference equations, importable as ``numpy_dlra.equations`` (the module lives in
:mod:`numpy_dlra.dlra.equations`; this name is kept for code and checks written against it)."""
from .dlra.equations import *  # noqa: F401,F403
from .dlra.equations import _closest_pair, _col_norms, _norm  # noqa: F401
