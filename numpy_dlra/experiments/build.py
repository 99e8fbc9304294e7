"""The model and parameters a configuration describes, fresh or around a checkpoint's arrays."""
import math

import numpy as np

from ..dlra.conv_network import FactorizedCNN
from ..dlra.network import FactorizedMLP
from ..errors import UserError
from ..models.cnn import CNN
from ..models.mlp import MLP, init_params
from ..nn.backend import array_module


def build_model(cfg, rng=None, state=None, xp=np):
    """(model, params) of `cfg`: fresh from the generator `rng`, or around a :class:`.run_folder.RunState`.

    baseline: :class:`MLP` (fixed-rank layers from ``rank`` and ``layer_ranks``) or :class:`CNN`;
    fn, dlra: :class:`FactorizedMLP` or :class:`FactorizedCNN` from the same dense initialization (P = Q = I, FN on).
    The parameters live on array module `xp` (drawn on the host by `rng`, then copied there once).
    """
    dtype = np.dtype(cfg.dtype)
    L = len(cfg.sizes) - 1
    saved = {k: xp.asarray(v) for k, v in state.params.items()} if state else None
    if cfg.model == "cnn":
        cnn = CNN(tuple(cfg.input_shape), cfg.sizes[-1], rank=cfg.rank, widths=cfg.cnn_widths)  # images, classes
        readings = dict(l2_on=cfg.l2_on, columns=cfg.conv_columns, axes=cfg.conv_axes)
        if cfg.method == "baseline":
            return cnn, (saved if state else cnn.init_params(rng, dtype, xp=xp))
        if state is None:  # the dense CNN's initialization, factorized with P = Q = I
            return FactorizedCNN.from_cnn(cnn, cnn.init_params(rng, dtype, xp=xp), fn=True, xp=xp, **readings)
        return FactorizedCNN(cnn.input_shape, cnn_sizes(cfg), state.factors, state.fn_k, xp, dtype, **readings), saved
    if cfg.method == "baseline":
        ranks = dict(cfg.layer_ranks) | ({L: cfg.rank} if cfg.rank else {})
        params = saved if state else init_params(cfg.sizes, rng, dtype, cfg.init, xp=xp, ranks=ranks)
        return MLP(cfg.sizes, cfg.dropout, tuple(sorted(ranks.items()))), params
    if state is None:  # fn, dlra: the dense initialization, factorized with P = Q = I
        return FactorizedMLP.from_dense(init_params(cfg.sizes, rng, dtype, cfg.init, xp=xp), cfg.sizes, cfg.dropout,
                                        fn=True, xp=xp, l2_on=cfg.l2_on)
    return FactorizedMLP(cfg.sizes, state.factors, state.fn_k, cfg.dropout, xp=xp, dtype=dtype, l2_on=cfg.l2_on), saved


def initial_params(path, fresh):
    """The parameters in the .npz `path` (``--init-from``), checked against the model's own keys and shapes."""
    try:
        with np.load(path, allow_pickle=False) as z:
            given = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - missing, truncated or not an .npz: the same answer
        raise UserError(f"--init-from {path}: cannot read it ({type(exc).__name__}: {exc})") from None
    want = {k: v.shape for k, v in fresh.items()}
    got = {k: v.shape for k, v in given.items()}
    if want != got:
        raise UserError(f"--init-from {path}: its arrays {got} do not fit the model's {want}")
    return {k: array_module(fresh[k]).asarray(given[k], dtype=fresh[k].dtype) for k in fresh}  # onto fresh's device


def cnn_sizes(cfg):
    """The CNN's widths as the factorized network's ``sizes``: (H W C, f1, f2, hidden, classes)."""
    return (math.prod(cfg.input_shape),) + tuple(cfg.cnn_widths) + (cfg.sizes[-1],)


def n_layers(cfg):
    """The number of layers of the run's network (4 for the CNN)."""
    return 4 if cfg.model == "cnn" else len(cfg.sizes) - 1


def dense_model(cfg):
    """The dense network of `cfg` before any compression: :class:`CNN` or :class:`MLP`."""
    if cfg.model == "cnn":
        return CNN(tuple(cfg.input_shape), cfg.sizes[-1], widths=cfg.cnn_widths)
    return MLP(cfg.sizes)


def params_at_init(cfg, model):
    """Trainable parameters of the same network at initialization: the reference of "compression"
    (FN adds one gain per layer)."""
    return model.param_count() if cfg.method == "baseline" else dense_model(cfg).param_count() + n_layers(cfg)
