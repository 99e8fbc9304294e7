"""cupyx.scipy stand-in: only `cupyx.scipy.sparse`."""
