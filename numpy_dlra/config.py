"""The configuration of one training run: a dataclass, validated on construction.

Where the paper is silent, the default is our choice and is marked so; every field is a flag of
``numpy-dlra train`` (``--batch-size`` for ``batch_size`` and so on).
"""
import dataclasses
from dataclasses import dataclass, field

from .datasets import DATASETS
from .errors import ConfigError
from .mlp import PAPER_SIZES

METHODS = ("baseline", "fn", "dlra")
FUSE_RATIOS = ("lstsq", "sum")
RARE_AXES = ("all", "fusable")
ADAM_MERGE = ("carry", "reset")


@dataclass(frozen=True)
class TrainConfig:
    method: str = "baseline"
    model: str = "mlp"  # "mlp": the paper's network (sizes); "cnn": the second seed's CNN
    dataset: str = "fashion-mnist"  # or "mnist", "cifar100" (second seed)
    rank: int = 0  # > 0: the last layer is fixed-rank B C of this rank (second seed); baseline only
    layer_ranks: tuple = ()  # ((layer, r), ...): fixed-rank B C for any MLP layers (compare-ranks); baseline only
    init_from: str = ""  # a .npz of parameters to start from instead of the random init (compare-ranks)
    epochs: int = 10  # paper: 2000
    batch_size: int = 128  # paper: not stated (our choice; see README "Choices")
    seed: int = 0
    dtype: str = "float32"
    data: str = "auto"  # auto | full | embedded
    sizes: tuple = None  # MLP widths; default 784-500x5-10, or 3072-500x5-100 for CIFAR-100
    lr: float = 1e-3  # paper
    beta1: float = 0.9  # paper
    beta2: float = 0.999  # paper
    eps: float = 1e-8  # Adam's usual value; paper: not stated
    dropout: float = 0.2  # paper
    grad_noise_eta: float = 1e-4  # paper: not stated (our choice, measured: see README "Choices")
    grad_noise_gamma: float = 0.55  # Neelakantan et al.
    lambda1: float = None  # RaRe weight, Eq. (18): 20 for dlra (paper), 0 otherwise
    lambda2: float = None  # L2 weight, Eq. (18): 0.1 for dlra (paper), 0 otherwise (baseline: L_task only)
    tau_cos: float = 1e-4  # Eq. (13), paper
    tau_euc: float = 1e-1  # Eq. (13), paper
    fuse_ratio: str = "lstsq"  # r of Eq. (9): "sum" is the paper's estimator (our choice: lstsq; README "Choices")
    rare_axes: str = "all"  # "all": Eq. (16) as printed; "fusable": only axes that may be fused (experiment)
    adam_merge: str = "carry"  # Adam's moments through a merge (paper: not stated; README "Choices")
    search_every: int = 1  # 1: exact; K > 1 searches the Grams every K-th step only (approximation, measured)
    probe_size: int = 256  # validation images whose logits each merge record compares (0: off)
    init: str = "he"  # paper: not stated
    val_fraction: float = 0.1  # paper
    split_seed: int = 0  # the validation split is the same for every run seed
    extra: dict = field(default_factory=dict)  # reserved for later methods; must be JSON-able

    def __post_init__(self):
        (h, w, c), classes = DATASETS.get(self.dataset, ((28, 28, 1), 10))
        if self.sizes is None:
            object.__setattr__(self, "sizes", (h * w * c,) + PAPER_SIZES[1:-1] + (classes,))
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        object.__setattr__(self, "layer_ranks", tuple((int(l), int(r)) for l, r in self.layer_ranks))
        dlra = self.method == "dlra"
        if self.lambda1 is None:
            object.__setattr__(self, "lambda1", 20.0 if dlra else 0.0)
        if self.lambda2 is None:
            object.__setattr__(self, "lambda2", 0.1 if dlra else 0.0)

        def need(ok, flag, value, what):
            if not ok:
                raise ConfigError(f"{flag} {value!r}: {what}")

        need(self.method in METHODS, "--method", self.method, f"choose one of {', '.join(METHODS)}")
        need(isinstance(self.epochs, int) and self.epochs >= 1, "--epochs", self.epochs, "must be an integer >= 1")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1, "--batch-size", self.batch_size,
             "must be an integer >= 1")
        need(isinstance(self.seed, int) and 0 <= self.seed < 2**63, "--seed", self.seed, "must be an integer in [0, 2^63)")
        need(self.dtype in ("float32", "float64"), "--dtype", self.dtype, "choose float32 or float64")
        need(self.data in ("auto", "full", "embedded"), "--data", self.data, "choose auto, full or embedded")
        need(len(self.sizes) >= 2 and all(s >= 1 for s in self.sizes), "--sizes", self.sizes,
             "need at least an input and an output width, all >= 1")
        need(self.dataset in DATASETS, "--dataset", self.dataset, f"choose one of {', '.join(DATASETS)}")
        need(self.model in ("mlp", "cnn"), "--model", self.model, "choose mlp or cnn")
        need(self.sizes[0] == h * w * c and self.sizes[-1] == classes, "--sizes", self.sizes,
             f"{self.dataset} needs input width {h * w * c} and output width {classes}")
        need(self.model == "mlp" or self.method == "baseline", "--method", self.method,
             "fn and dlra are built for the MLP (--model mlp)")
        need(isinstance(self.rank, int) and self.rank >= 0, "--rank", self.rank, "must be an integer >= 0 (0 = full rank)")
        need(self.rank == 0 or self.method == "baseline", "--rank", self.rank,
             "a fixed-rank last layer goes with --method baseline (DLRA finds its ranks itself)")
        need(not self.layer_ranks or (self.model == "mlp" and self.method == "baseline"), "--layer-ranks",
             self.layer_ranks, "fixed-rank hidden layers go with --model mlp --method baseline")
        for l, r in self.layer_ranks:
            need(1 <= l < len(self.sizes) and 1 <= r <= min(self.sizes[l], self.sizes[l - 1]), "--layer-ranks",
                 (l, r), f"layer {l} of {len(self.sizes) - 1} has no rank {r}")
        last = (self.sizes[-1], self.sizes[-2]) if self.model == "mlp" else (classes, 256)
        need(self.rank <= min(last), "--rank", self.rank, f"the last layer is {last[0]} x {last[1]}: at most {min(last)}")
        need(self.lr > 0, "--lr", self.lr, "must be > 0")
        need(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "--beta1/--beta2", (self.beta1, self.beta2), "must be in [0, 1)")
        need(self.eps > 0, "--eps", self.eps, "must be > 0")
        need(0 <= self.dropout < 1, "--dropout", self.dropout, "must be in [0, 1)")
        need(self.grad_noise_eta >= 0, "--grad-noise-eta", self.grad_noise_eta, "must be >= 0 (0 turns noise off)")
        need(self.grad_noise_gamma >= 0, "--grad-noise-gamma", self.grad_noise_gamma, "must be >= 0")
        need(self.lambda2 >= 0, "--lambda2", self.lambda2, "must be >= 0")
        need(self.lambda1 >= 0, "--lambda1", self.lambda1, "must be >= 0")
        need(dlra or self.lambda1 == 0, "--lambda1", self.lambda1, "the RaRe term belongs to --method dlra")
        need(0 < self.tau_cos <= 1, "--tau-cos", self.tau_cos, "must be in (0, 1]")
        need(self.tau_euc > 0, "--tau-euc", self.tau_euc, "must be > 0")
        need(self.fuse_ratio in FUSE_RATIOS, "--fuse-ratio", self.fuse_ratio, f"choose {' or '.join(FUSE_RATIOS)}")
        need(self.rare_axes in RARE_AXES, "--rare-axes", self.rare_axes, f"choose {' or '.join(RARE_AXES)}")
        need(self.adam_merge in ADAM_MERGE, "--adam-merge", self.adam_merge, f"choose {' or '.join(ADAM_MERGE)}")
        need(isinstance(self.search_every, int) and self.search_every >= 1, "--search-every", self.search_every,
             "must be an integer >= 1 (1 = exact)")
        need(isinstance(self.probe_size, int) and self.probe_size >= 0, "--probe-size", self.probe_size,
             "must be an integer >= 0")
        need(self.init in ("he", "glorot"), "--init", self.init, "choose he or glorot")
        need(0 < self.val_fraction < 1, "--val-fraction", self.val_fraction, "must be in (0, 1)")
        need(isinstance(self.split_seed, int) and self.split_seed >= 0, "--split-seed", self.split_seed, "must be >= 0")

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["sizes"] = list(self.sizes)
        d["layer_ranks"] = [list(p) for p in self.layer_ranks]
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown configuration keys {sorted(unknown)}")
        return cls(**d)
