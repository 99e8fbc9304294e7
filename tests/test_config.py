"""One source for the configuration: every TrainConfig field is a flag, and every error names one."""
import dataclasses

import pytest

from numpy_dlra.cli import _parser, config_from
from numpy_dlra.errors import ConfigError
from numpy_dlra.experiments.config import TrainConfig, flag
from numpy_dlra.dlra.pairs import FusionRules


def train_flags():
    sub = next(a for a in _parser()._actions if a.dest == "command")
    return {a.option_strings[0]: a for a in sub.choices["train"]._actions if a.option_strings}


FROM_THE_DATA = {"input_shape", "input_scaling", "data_sha256"}  # filled in by TrainConfig.fit, never flags


def test_every_field_is_a_flag_with_its_default_and_choices():
    flags = train_flags()
    assert {f.name for f in dataclasses.fields(TrainConfig) if not f.metadata["flag"]} == FROM_THE_DATA
    assert not {flag(n) for n in FROM_THE_DATA} & set(flags)
    for f in dataclasses.fields(TrainConfig):
        if f.name in FROM_THE_DATA:
            continue
        a = flags[flag(f.name)]
        assert a.dest == f.name and a.default == f.default and a.help.startswith(f.metadata["help"][:20])
        assert tuple(a.choices or ()) == tuple(f.metadata["choices"] or ())


def test_flags_give_the_config_and_defaults_are_the_dataclass_defaults():
    args = _parser().parse_args(["train"])
    assert config_from(args) == TrainConfig()
    args = _parser().parse_args(["train", "--method", "dlra", "--sizes", "784,64,10", "--layer-ranks", "",
                                 "--lambda1", "5", "--beta2", "0.99", "--val-fraction", "0.2"])
    cfg = config_from(args)
    assert (cfg.sizes, cfg.lambda1, cfg.lambda2, cfg.beta2, cfg.val_fraction) == ((784, 64, 10), 5.0, 0.1, 0.99, 0.2)


BAD = {  # field: a value its validation refuses
    "method": "svd", "model": "rnn", "dataset": "imagenet", "rank": -1, "layer_ranks": ((9, 3),),
    "epochs": 0, "batch_size": 0, "seed": -1, "dtype": "float16", "device": "tpu", "data": "some", "sizes": (784, 10, 3),
    "lr": 0.0, "beta1": 1.0, "beta2": -0.1, "eps": 0.0, "dropout": 1.0, "grad_noise_eta": -1.0,
    "grad_noise_gamma": -1.0, "lambda1": -1.0, "lambda2": -1.0, "tau_cos": 0.0, "tau_euc": 0.0,
    "l2_on": "b", "merge_pairs": "all", "fuse_ratio": "max", "rare_axes": "some", "adam_merge": "keep", "search_every": 0, "probe_size": -1, "eq13_on": "cw", "row_vectors": "b", "grad_noise_stream": "normal", "l2_mode": "adamw", "task_loss": "avg",
    "init": "zeros", "val_fraction": 1.0, "split_seed": -1,
    "cnn_widths": (32, 32), "conv_columns": "pixel", "conv_axes": "rows",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_error_names_an_existing_flag(name):
    flags = train_flags()
    extra = {"method": "dlra"} if name in ("lambda1", "tau_cos", "tau_euc", "search_every") else {}
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**{**extra, name: BAD[name]})
    named = str(exc.value).split()[0]
    assert named == flag(name) and named in flags, str(exc.value)


def test_every_validated_field_is_covered_above():
    unchecked = {"init_from"}  # a path: checked when it is read (UserError naming --init-from)
    # records of the data, written by TrainConfig.fit: input_shape is checked below; the two strings are facts
    unchecked |= FROM_THE_DATA
    assert set(BAD) | unchecked == {f.name for f in dataclasses.fields(TrainConfig)}


def test_a_bad_recorded_input_shape_names_its_config_key():
    with pytest.raises(ConfigError, match=r"^config key input_shape \(0, 5\): must be"):
        TrainConfig(input_shape=(0, 5))
    with pytest.raises(ConfigError, match=r"^config key input_shape \(14, 14, 1\): fashion-mnist's images are"):
        TrainConfig(input_shape=(14, 14, 1))
    with pytest.raises(ConfigError, match="^--sizes .*input width 196"):
        TrainConfig(data="mine.npz", input_shape=(14, 14, 1), sizes=(784, 5))


def test_fusion_rules_come_from_the_config_by_keyword():
    cfg = TrainConfig(method="dlra", lambda1=7.0, tau_cos=1e-3, tau_euc=0.5, fuse_ratio="sum", rare_axes="fusable",
                      adam_merge="reset", search_every=3)
    assert FusionRules.from_config(cfg) == FusionRules(7.0, 1e-3, 0.5, "sum", "fusable", "reset", 3, "closest")


def test_older_run_folders_config_still_loads():
    d = TrainConfig().to_dict() | {"extra": {}}
    assert TrainConfig.from_dict(d) == TrainConfig()
    # a folder written before --eq13-on existed was trained reading W': it loads as such, not as today's default
    old = {k: v for k, v in TrainConfig(method="dlra").to_dict().items() if k != "eq13_on"}
    assert TrainConfig.from_dict(old).eq13_on == "w" and TrainConfig(method="dlra").eq13_on == "effective"
    # and one written before --row-vectors existed tested and fused rows as [w', b'] rows
    old = {k: v for k, v in TrainConfig(method="dlra").to_dict().items() if k != "row_vectors"}
    assert TrainConfig.from_dict(old).row_vectors == "wb" and TrainConfig(method="dlra").row_vectors == "w"
    # and one written before --grad-noise-stream existed drew its noise from Generator.random's floats
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "grad_noise_stream"}
    assert TrainConfig.from_dict(old).grad_noise_stream == "uniform" and TrainConfig().grad_noise_stream == "raw"
    with pytest.raises(ConfigError, match="unknown configuration keys"):
        TrainConfig.from_dict(TrainConfig().to_dict() | {"extra": {"x": 1}})


def test_widths_must_be_integers():
    import numpy as np

    assert TrainConfig(sizes=(np.int64(784), 5, 10)).sizes == (784, 5, 10)
    for bad in ((784, 5.5, 10), (784, "5", 10), (784, True, 10)):
        with pytest.raises(ConfigError, match="--sizes .*: give integer widths"):
            TrainConfig(sizes=bad)


def test_the_cnn_only_settings_never_tell_two_mlp_runs_apart():
    """An MLP run recorded the convolution settings with the defaults of its day; a later default (conv_axes became
    "both" after its measurement) must not make it "a different configuration" when resumed or reused."""
    old = TrainConfig(method="dlra", conv_axes="longer")
    assert old.run_key() == TrainConfig(method="dlra").run_key()
    assert TrainConfig(method="dlra", model="cnn", conv_axes="longer").run_key() != \
        TrainConfig(method="dlra", model="cnn").run_key()


def test_the_noise_stream_never_tells_runs_apart():
    """--grad-noise-stream changes a run's bits, not its distribution (as the BLAS thread count does): a folder made
    with either stream is reused and resumed, with the stream it recorded, so runs made before the flag (which
    load as "uniform") still serve reproduce and controls under the new default."""
    assert TrainConfig(method="fn").run_key() == TrainConfig(method="fn", grad_noise_stream="uniform").run_key()
    assert "grad_noise_stream" not in TrainConfig().run_key()
