"""The configuration of one training run: a dataclass, the one source of every setting.

Each field is a flag of ``numpy-dlra train`` (``batch_size`` is ``--batch-size``); its help and
choices live here, in the field's metadata, and :mod:`numpy_dlra.cli` builds the flags from them.
Where the paper is silent the default is our choice and the help says so (docs/choices.md gives the
evidence). Construction validates every field; an error names the flag and what to do.
"""
import dataclasses
import math
import numbers
from argparse import ArgumentTypeError
from dataclasses import dataclass, field

from ..data.datasets import DATASETS
from ..errors import ConfigError
from ..models.mlp import PAPER_SIZES

METHODS = ("baseline", "fn", "dlra")
RETIRED_KEYS = {"extra": {}}  # keys older run folders hold, with the only value they ever had
# keys older run folders lack, with the value that matches how those runs were trained (where it is not the default)
ADDED_KEYS = {"eq13_on": "w", "row_vectors": "wb", "grad_noise_stream": "uniform"}
# the settings only DLRA reads (its Eqs. 13 and 16, the merges); a baseline or fn run never reads them
DLRA_ONLY = ("lambda1", "tau_cos", "tau_euc", "fuse_ratio", "rare_axes", "adam_merge", "merge_pairs", "eq13_on",
             "row_vectors", "search_every", "probe_size", "conv_columns", "conv_axes")
CNN_WIDTHS = (32, 32, 256)  # the seed report's CNN: conv 32, conv 32, dense 256
CNN_ONLY = ("cnn_widths", "conv_columns", "conv_axes")  # the settings only --model cnn reads


def _f(default, help, choices=None, type=None, flag=True):
    """A config field with its flag's help (and choices, and a parser for non-scalar values); ``flag=False``
    for a field the run fills in from its data (recorded in config.json, never given on the command line)."""
    return field(default=default, metadata={"help": help, "choices": choices, "type": type, "flag": flag})


BUILT_IN_DATA = ("auto", "full", "embedded")
OWN = "own"  # the dataset kind of your own arrays: --data FILE.npz, or data="arrays" with a Dataset in Python


def is_own(data):
    """Whether `data` (the --data value) names your own arrays: a FILE.npz, or "arrays" (Python)."""
    return data == "arrays" or str(data).endswith(".npz")


def parse_ints(text):
    """'784,500,10' -> (784, 500, 10)."""
    try:
        return tuple(int(s) for s in str(text).split(",") if s.strip())
    except ValueError:
        raise ArgumentTypeError(f"{text!r}: give comma-separated integers, e.g. 784,500,10") from None


def parse_layer_ranks(text):
    """'2:497,3:494' -> ((2, 497), (3, 494))."""
    try:
        pairs = tuple(tuple(int(v) for v in p.split(":")) for p in str(text).split(",") if p.strip())
    except ValueError:
        pairs = ((),)
    if any(len(p) != 2 for p in pairs):
        raise ArgumentTypeError(f"{text!r}: give LAYER:RANK pairs, e.g. 2:497,3:494")
    return pairs


@dataclass(frozen=True)
class TrainConfig:
    method: str = _f("baseline", "baseline: the paper's dense MLP; fn: + Frobenius Normalization; "
                     "dlra: fn + RaRe + fusing (Algorithm 1)", METHODS)
    model: str = _f("mlp", "mlp: the paper's 784-500x5-10; cnn: the fixed-rank baseline's small CNN", ("mlp", "cnn"))
    dataset: str = _f("fashion-mnist", "fashion-mnist (the paper's); mnist (falls back to Fashion-MNIST with "
                      "--data auto); cifar100; own (set by --data FILE.npz)", tuple(DATASETS) + (OWN,))
    rank: int = _f(0, "> 0: the last layer is fixed-rank B C of this rank (Sainath et al. 2013; baseline only); 0: dense")
    layer_ranks: tuple = _f((), "fixed-rank B C for any MLP layers, as LAYER:RANK,... (e.g. 2:497,3:494; baseline only)",
                            type=parse_layer_ranks)
    init_from: str = _f("", "a .npz of parameters to start from instead of the random initialization")
    epochs: int = _f(10, "epochs to train (paper: 2000)")
    batch_size: int = _f(128, "examples per step (paper: not stated; our choice)")
    seed: int = _f(0, "seeds the initialization, shuffling, dropout and noise")
    dtype: str = _f("float32", "floating-point type of the arrays", ("float32", "float64"))
    device: str = _f("cpu", "cpu: NumPy; cuda: CuPy on the GPU (the optional extra gpu). The dropout and noise draws "
                     "differ between the two: a CUDA run is reproducible on its own device only", ("cpu", "cuda"))
    data: str = _f("auto", "full Fashion-MNIST, the embedded 5000/1000 subset, auto (full when found), or FILE.npz: "
                   "your own arrays x_train, y_train, x_test, y_test (optional x_val, y_val; docs/usage.md)", type=str)
    sizes: tuple = _f(None, "MLP widths, comma-separated (default 784,500,500,500,500,500,10; "
                      "3072,...,100 for cifar100; for --data FILE.npz, the file's input width and class count "
                      "around the paper's hidden widths)", type=parse_ints)
    lr: float = _f(1e-3, "Adam's learning rate (paper)")
    beta1: float = _f(0.9, "Adam's beta1 (paper)")
    beta2: float = _f(0.999, "Adam's beta2 (paper)")
    eps: float = _f(1e-8, "Adam's epsilon (paper: not stated; Adam's usual value)")
    dropout: float = _f(0.2, "dropout rate r0 after every hidden layer (paper)")
    grad_noise_eta: float = _f(1e-4, "gradient-noise variance scale eta (paper: not stated; our choice; 0 = off)")
    grad_noise_gamma: float = _f(0.55, "gradient-noise decay: variance eta / (1 + t)^gamma (Neelakantan et al.)")
    grad_noise_stream: str = _f("raw", "how the CPU draws the gradient noise, both Box-Muller: raw, from the "
                                "generator's 64-bit words, sigma folded in (the default, measured faster: "
                                "benchmarks/noise_draws.py); uniform, from "
                                "Generator.random's floats, the stream of the runs made before it. A GPU draws "
                                "cuRAND's uniforms either way", ("raw", "uniform"))
    lambda1: float = _f(None, "RaRe weight, Eq. 18 (default 20 for dlra, as the paper; 0 otherwise)", type=float)
    lambda2: float = _f(None, "L2 weight, Eqs. 17-18 (default 0.1 for dlra, as the paper; 0 otherwise)", type=float)
    l2_on: str = _f("w", "which weight Eq. 17's L2 term reads (fn, dlra): w, W' as printed (the default, measured: "
                    "docs/choices.md); effective, FN(W') = c W'; dense, P FN(W') Q (equal to effective: merges keep "
                    "P's and Q's scales unit-norm)", ("w", "effective", "dense"))
    l2_mode: str = _f("loss", "how Eq. 17's L2 term acts: loss, added to the loss and so passed through Adam (as "
                      "printed); decoupled, W' shrinks by lr x the L2 gradient after Adam's update, outside Adam "
                      "(AdamW-style weight decay)", ("loss", "decoupled"))
    task_loss: str = _f("mean", "L_task over a batch: mean (our choice; the paper does not say); sum, the batch's "
                        "sum, which weighs lambda1 and lambda2 batch-size times less against the task", ("mean", "sum"))
    tau_cos: float = _f(1e-4, "Eq. 13's threshold on 1 - |cos| (paper)")
    tau_euc: float = _f(1e-1, "Eq. 13's threshold on D_euc (paper)")
    fuse_ratio: str = _f("lstsq", "r of Eq. 8: lstsq <w_d,w_k>/<w_k,w_k> (our choice) or sum, the paper's "
                         "sum(w_d)/sum(w_k)", ("lstsq", "sum"))
    rare_axes: str = _f("all", "all: RaRe on every layer and axis (Eq. 16 as printed); fusable: only the axes "
                        "that may fuse (an experiment)", ("all", "fusable"))
    adam_merge: str = _f("carry", "Adam's moments of a merged vector: carry (our choice) or reset to zero",
                         ("carry", "reset"))
    merge_pairs: str = _f("closest", "which pairs Eq. 13 fuses after an update: closest, the closest pair of an axis "
                          "while it meets Eq. 13 (our choice); one, at most one fusion per layer, axis and step; any, "
                          "also less parallel pairs that pass when the closest fails the Euclidean test",
                          ("closest", "one", "any"))
    eq13_on: str = _f("effective", "which weights Eq. 13's test reads: effective, the network's own weights c W' "
                      "(FN's scale c: the same cosine, D_euc scaled by c; the default, measured: docs/choices.md); w, "
                      "the parameters W' as stored (runs made before this flag existed)", ("effective", "w"))
    row_vectors: str = _f("w", "the rows Eq. 13 tests and fuses: w, the rows of W', the pair RaRe pulls together (Eq. 16 "
                          "as printed; the default, measured: docs/choices.md); wb, the rows of [W', b'] (runs made "
                          "before this flag existed; their row merges stall)", ("w", "wb"))
    search_every: int = _f(1, "1: find the closest pairs from fresh Grams every step (exact); K > 1: every K-th "
                           "step, re-measuring the last pairs in between (an approximation)")
    probe_size: int = _f(256, "validation images whose logits merges.jsonl compares before and after each merge (0: off)")
    init: str = _f("he", "weight initialization (paper: not stated; our choice: he)", ("he", "glorot"))
    val_fraction: float = _f(0.1, "fraction of the training set held out for validation (paper)")
    split_seed: int = _f(0, "seed of the stratified validation split (the same for every run seed)")
    # filled in from the data (TrainConfig.fit), recorded in config.json; not flags
    cnn_widths: tuple = _f(CNN_WIDTHS, "the CNN's widths f1,f2,hidden (--model cnn): the two convolutions' channels "
                           "and the dense layer's units (default 32,32,256, the seed report's)", type=parse_ints)
    conv_columns: str = _f("channel", "what a column of a kernel C_o x (kh kw C_i) is (--model cnn --method dlra): "
                           "channel, all kh kw positions of one input channel (the kernel stays a convolution; "
                           "measured, docs/choices.md); coord, one (h, w, c_i) coordinate (the paper's words)",
                           ("channel", "coord"))
    conv_axes: str = _f("both", "which axes of a kernel may fuse (--model cnn --method dlra): both, rows and columns "
                        "(measured: 50-54 % compression against longer's 16 % at the same accuracy, docs/choices.md); "
                        "longer, the MLP's rule on (m', columns)", ("longer", "both"))
    input_shape: tuple = _f(None, "one example's shape: (H, W, C) images or (d,) vectors", flag=False)
    input_scaling: str = _f("", "the input scaling the data went through (datasets.SCALING_RULE)", flag=False)
    data_sha256: str = _f("", "for your own data, the sha256 of the .npz file (or of the arrays)", flag=False)

    def __post_init__(self):
        def need(ok, name, what, value=None):
            if not ok:
                value = getattr(self, name) if value is None else value
                where = flag(name) if FIELDS[name].metadata["flag"] else f"config key {name}"
                raise ConfigError(f"{where} {value!r}: {what}")

        need(isinstance(self.dataset, str), "dataset", "must be a string")  # a config.json may hold anything
        need(isinstance(self.data, str), "data", "must be a string")
        need(self.data in BUILT_IN_DATA or is_own(self.data), "data",
             f"choose one of {', '.join(BUILT_IN_DATA)}, or give a FILE.npz of your own arrays")
        if is_own(self.data):
            need(self.dataset in ("fashion-mnist", OWN), "dataset",
                 f"--data {self.data} holds your own arrays: leave --dataset out")
            object.__setattr__(self, "dataset", OWN)
        else:
            need(self.dataset != OWN, "dataset", "own is set by --data FILE.npz; give the file")
            (h, w, c), classes = DATASETS.get(self.dataset, ((28, 28, 1), 10))
            if self.input_shape is None:
                object.__setattr__(self, "input_shape", (h, w, c))
            if not self.input_scaling:
                object.__setattr__(self, "input_scaling", "uint8/255")
            if self.sizes is None:
                object.__setattr__(self, "sizes", (h * w * c,) + PAPER_SIZES[1:-1] + (classes,))
        dlra = self.method == "dlra"
        if self.lambda1 is None:
            object.__setattr__(self, "lambda1", 20.0 if dlra else 0.0)
        if self.lambda2 is None:
            object.__setattr__(self, "lambda2", 0.1 if dlra else 0.0)

        for f in dataclasses.fields(self):  # types first: a config.json may hold anything
            v = getattr(self, f.name)
            if f.type is float and isinstance(v, (int, float)) and not isinstance(v, bool):
                need(math.isfinite(v), f.name, "must be a finite number")
                object.__setattr__(self, f.name, float(v))
            elif f.type is float or (f.type is int and (not isinstance(v, int) or isinstance(v, bool))):
                need(False, f.name, "must be a number" if f.type is float else "must be an integer")
            elif f.type is str and not isinstance(v, str):
                need(False, f.name, "must be a string")
            elif f.type is tuple and v is not None and not isinstance(v, (tuple, list)):
                need(False, f.name, "must be a list")
        for f in dataclasses.fields(self):
            choices = f.metadata["choices"]
            if choices:
                need(getattr(self, f.name) in choices, f.name, f"choose one of {', '.join(choices)}")
        if self.input_shape is not None:
            need(all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in self.input_shape)
                 and len(self.input_shape) in (1, 3), "input_shape", "must be (d,) or (H, W, C)")
            object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        if self.sizes is not None:  # None only for your own data not yet read: TrainConfig.fit fills the widths in
            need(all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in self.sizes), "sizes",
                 "give integer widths, e.g. 784,500,10")
            object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        try:
            object.__setattr__(self, "layer_ranks", tuple((int(l), int(r)) for l, r in self.layer_ranks))
        except (TypeError, ValueError):
            need(False, "layer_ranks", "give LAYER:RANK pairs, e.g. 2:497,3:494")
        for name in ("epochs", "batch_size"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) >= 1, name, "must be an integer >= 1")
        need(isinstance(self.seed, int) and 0 <= self.seed < 2**63, "seed", "must be an integer in [0, 2^63)")
        try:
            object.__setattr__(self, "cnn_widths", tuple(int(w) for w in self.cnn_widths))
        except (TypeError, ValueError):
            need(False, "cnn_widths", "give three integers f1,f2,hidden, e.g. 32,32,256")
        need(len(self.cnn_widths) == 3 and min(self.cnn_widths) >= 1, "cnn_widths",
             "give three widths >= 1: f1,f2,hidden, e.g. 32,32,256")
        need(self.model == "cnn" or self.cnn_widths == CNN_WIDTHS, "cnn_widths", "widths of the CNN: use with --model cnn")
        need(isinstance(self.rank, int) and self.rank >= 0, "rank", "must be an integer >= 0 (0 = full rank)")
        need(self.rank == 0 or self.method == "baseline", "rank",
             "a fixed-rank last layer goes with --method baseline (DLRA finds its ranks itself)")
        need(not self.layer_ranks or (self.model == "mlp" and self.method == "baseline"), "layer_ranks",
             "fixed-rank hidden layers go with --model mlp --method baseline")
        if self.sizes is not None:
            self._check_sizes(need)
        need(self.lr > 0, "lr", "must be > 0")
        need(0 <= self.beta1 < 1, "beta1", "must be in [0, 1)")
        need(0 <= self.beta2 < 1, "beta2", "must be in [0, 1)")
        need(self.eps > 0, "eps", "must be > 0")
        need(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")
        need(self.grad_noise_eta >= 0, "grad_noise_eta", "must be >= 0 (0 turns noise off)")
        need(self.grad_noise_gamma >= 0, "grad_noise_gamma", "must be >= 0")
        need(self.lambda2 >= 0, "lambda2", "must be >= 0")
        need(self.lambda1 >= 0, "lambda1", "must be >= 0")
        need(dlra or self.lambda1 == 0, "lambda1", "the RaRe term belongs to --method dlra")
        need(0 < self.tau_cos <= 1, "tau_cos", "must be in (0, 1]")
        need(self.tau_euc > 0, "tau_euc", "must be > 0")
        need(isinstance(self.search_every, int) and self.search_every >= 1, "search_every",
             "must be an integer >= 1 (1 = exact)")
        need(isinstance(self.probe_size, int) and self.probe_size >= 0, "probe_size", "must be an integer >= 0")
        need(0 < self.val_fraction < 1, "val_fraction", "must be in (0, 1)")
        need(isinstance(self.split_seed, int) and self.split_seed >= 0, "split_seed", "must be an integer >= 0")

    def _check_sizes(self, need):
        """The widths against the data's (built-in data sets' widths, or the input shape read from your own)."""
        need(len(self.sizes) >= 2 and all(s >= 1 for s in self.sizes), "sizes",
             "need at least an input and an output width, all >= 1")
        if self.dataset != OWN:
            (h, w, c), classes = DATASETS.get(self.dataset, ((28, 28, 1), 10))
            need(self.sizes[0] == h * w * c and self.sizes[-1] == classes, "sizes",
                 f"{self.dataset} needs input width {h * w * c} and output width {classes}")
            need(self.input_shape == (h, w, c), "input_shape", f"{self.dataset}'s images are {(h, w, c)}")
        elif self.input_shape is not None:
            need(self.sizes[0] == math.prod(self.input_shape), "sizes",
                 f"the data's examples have shape {self.input_shape}: input width {math.prod(self.input_shape)}")
        if self.model == "cnn":
            need(self.input_shape is None or len(self.input_shape) == 3, "model",
                 f"the CNN needs images (N, H, W[, C]); --data {self.data} holds vectors of shape {self.input_shape}")
            if self.input_shape is not None and len(self.input_shape) == 3:  # conv 3x3, conv 3x3, pool 2: (H-4)//2
                h, w, c = self.input_shape
                need(min(h, w) >= 6, "model",
                     f"the CNN needs images of at least 6 x 6 pixels, channels last (N, H, W[, C]); --data {self.data} "
                     f"holds images of shape {(h, w, c)}: for (N, C, H, W) arrays save x.transpose(0, 2, 3, 1)")
        for l, r in self.layer_ranks:
            need(1 <= l < len(self.sizes) and 1 <= r <= min(self.sizes[l], self.sizes[l - 1]), "layer_ranks",
                 f"layer {l} of {len(self.sizes) - 1} has no rank {r}", value=f"{l}:{r}")
        last = (self.sizes[-1], self.sizes[-2]) if self.model == "mlp" else (self.sizes[-1], self.cnn_widths[2])
        need(self.rank <= min(last), "rank", f"the last layer is {last[0]} x {last[1]}: at most {min(last)}")

    def fit(self, data, check_split=True):
        """This configuration for the :class:`numpy_dlra.data.datasets.Dataset` `data`: for your own data
        the widths (the data's input width and class count around the paper's hidden widths, unless --sizes
        gave them), its input shape, scaling and sha256 filled in; --sizes that disagree with the data raise
        a ConfigError naming both, and so (``check_split``: a run not yet started) does a val_fraction or
        split_seed other than those the data were split with. Built-in data sets are checked at construction
        and pass unchanged."""
        if not is_own(self.data):
            return self
        width, classes = math.prod(data.input_shape), int(data.n_classes)
        source = data.source or self.data
        split = data.split  # checked for a new run; a resumed one keeps what it recorded
        if check_split and split is not None and tuple(split) != (self.val_fraction, self.split_seed):
            raise ConfigError(f"val_fraction={self.val_fraction}, split_seed={self.split_seed}: {source} were split "
                              f"with val_fraction={split[0]}, split_seed={split[1]} (from_arrays' own arguments); "
                              "give the configuration the same, or pass yours to from_arrays")
        sizes = self.sizes or (width,) + PAPER_SIZES[1:-1] + (classes,)
        if (sizes[0], sizes[-1]) != (width, classes):
            raise ConfigError(f"--sizes {','.join(map(str, sizes))}: {source} holds inputs of width {width} "
                              f"(examples of shape {tuple(data.input_shape)}) and {classes} classes; give --sizes "
                              f"{width},...,{classes}, or leave --sizes out for {width},"
                              f"{','.join(map(str, PAPER_SIZES[1:-1]))},{classes}")
        return dataclasses.replace(self, sizes=sizes, input_shape=tuple(data.input_shape),
                                   input_scaling=data.scaling, data_sha256=data.sha256 or "")

    def run_key(self):
        """The fields that make the run what it is, as a dict: every field but ``epochs`` and those its
        method never reads (DLRA_ONLY for baseline and fn; ``l2_on`` for the baseline, whose L2 term reads
        its only weight; ``grad_noise_stream``, which like the BLAS thread count changes the bits of a run, not what it
        samples). Two configurations with one key train the same run, so a finished run is reused and an unfinished
        one resumed (with its own saved configuration) even when a default changed after it started."""
        d = self.to_dict()
        del d["epochs"]
        for k in (DLRA_ONLY if self.method != "dlra" else ()) + (("l2_on",) if self.method == "baseline" else ()):
            del d[k]
        if self.model != "cnn":  # an MLP never reads them (runs recorded them with the defaults of their day)
            for k in CNN_ONLY:
                d.pop(k, None)
        del d["grad_noise_stream"]  # how the draws are made, like the thread count: the same distribution
        return d

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["sizes"] = list(self.sizes) if self.sizes is not None else None
        d["input_shape"] = list(self.input_shape) if self.input_shape is not None else None
        d["layer_ranks"] = [list(p) for p in self.layer_ranks]
        d["cnn_widths"] = list(self.cnn_widths)
        return d

    @classmethod
    def from_dict(cls, d):
        d = ADDED_KEYS | {k: v for k, v in d.items() if not (k in RETIRED_KEYS and v == RETIRED_KEYS[k])}
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown configuration keys {sorted(unknown)}")
        return cls(**d)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def flag(name):
    """The command-line flag of a TrainConfig field: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")
