"""The model and parameters a configuration describes, fresh or around a checkpoint's arrays."""
import numpy as np

from ..data.datasets import DATASETS
from ..dlra.network import FactorizedMLP
from ..errors import UserError
from ..models.cnn import CNN
from ..models.mlp import MLP, init_params


def build_model(cfg, rng=None, state=None):
    """(model, params) of `cfg`: fresh from the generator `rng`, or around a :class:`.run_folder.RunState`.

    baseline: :class:`MLP` (fixed-rank layers from ``rank`` and ``layer_ranks``) or :class:`CNN`;
    fn, dlra: :class:`FactorizedMLP` from the same dense initialization (P = Q = I, FN on).
    """
    dtype = np.dtype(cfg.dtype)
    L = len(cfg.sizes) - 1
    if cfg.model == "cnn":
        (h, w, c), classes = DATASETS[cfg.dataset]
        model = CNN((h, w, c), classes, rank=cfg.rank)
        return model, (state.params if state else model.init_params(rng, dtype))
    if cfg.method == "baseline":
        ranks = dict(cfg.layer_ranks) | ({L: cfg.rank} if cfg.rank else {})
        params = state.params if state else init_params(cfg.sizes, rng, dtype, cfg.init, ranks=ranks)
        return MLP(cfg.sizes, cfg.dropout, tuple(sorted(ranks.items()))), params
    if state is None:  # fn, dlra: the dense initialization, factorized with P = Q = I
        return FactorizedMLP.from_dense(init_params(cfg.sizes, rng, dtype, cfg.init), cfg.sizes, cfg.dropout, fn=True,
                                        l2_on=cfg.l2_on)
    return FactorizedMLP(cfg.sizes, state.factors, state.fn_k, cfg.dropout, dtype=dtype, l2_on=cfg.l2_on), state.params


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
    return {k: given[k].astype(fresh[k].dtype) for k in fresh}


def params_at_init(cfg, model):
    """Trainable parameters of the same network at initialization: the reference of "compression"
    (FN adds one gain per layer)."""
    return model.param_count() if cfg.method == "baseline" else MLP(cfg.sizes).param_count() + len(cfg.sizes) - 1
