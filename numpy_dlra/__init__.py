"""numpy_dlra: Dynamic Low-Rank Approximation (Lee et al., Applied Sciences 2021) in NumPy.

Start with README.md; the modules map to the paper as follows:
- layers, losses, mlp: the network of Sec. 5 (Eqs. 1-2, the L2 term Eq. 17);
- optim: Adam and gradient noise (Sec. 5);
- datasets, idx, fetch, prepare: Fashion-MNIST; train, checkpoint, config, cli: running it.
"""
__version__ = "0.1.0"
