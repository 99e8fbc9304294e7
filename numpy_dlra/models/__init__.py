"""The networks, composed from :mod:`numpy_dlra.nn`: the paper's MLP (Sec. 5), optionally with
fixed-rank layers, and the fixed-rank baseline's small CNN. :mod:`.base` holds what every model
shares (the loss of Eq. 18 without RaRe, batched prediction). The factorized MLP that DLRA shrinks
lives with the method, in :mod:`numpy_dlra.dlra.network`.
"""
