"""Architecture and loss knobs of the REMOT networks (paper section 3), as one flat, frozen dataclass.

Every field is a plain typed scalar with a one-line ``help`` in its ``dataclasses.field`` metadata, so the
lead's pydantic params schema can mirror it field by field (``ModelConfig.field_help()`` lists them).

Two named profiles:

* ``paper`` - vid2vid-sized networks as REMOT uses them (ngf 64, 3 downsamplings, 9 residual blocks,
  2-scale 3-layer PatchGAN discriminators); the dataclass defaults are this profile.
* ``tiny`` - a few thousand-parameter version of the same graph for tests and CPU smoke runs:
  forward+backward of every network at 256x192, batch 1, well under a second or two on one CPU core.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

GAN_OBJECTIVES: tuple[str, ...] = ("vanilla", "lsgan", "hinge")
PERCEPTUAL_ON: tuple[str, ...] = ("foreground", "regions")
NORMS: tuple[str, ...] = ("instance", "batch", "none")


def _knob(default: Any, help: str, only: tuple[str, ...] | None = None) -> Any:
    """``only``: the networks this knob shapes (None = all); another network's checkpoint loads whatever its
    value (``ModelConfig.architecture``)."""
    return field(default=default, metadata={"help": help, "only": only})


def _loss_knob(default: Any, help: str) -> Any:
    """A knob of the training objective only: it builds no layer, so a checkpoint trained with another value
    still loads (``ModelConfig.architecture`` leaves it out)."""
    return field(default=default, metadata={"help": help, "loss": True})


@dataclass(frozen=True)
class ModelConfig:
    """All knobs of the REMOT generators, discriminators and losses. Defaults = the ``paper`` profile."""

    # --- generators (vid2vid-style encoder / residual / decoder, paper 3.1 "we also use vid2vid") ---
    ngf: int = _knob(64, "generator base channels (after the 7x7 stem); doubled at every downsampling")
    n_downsample: int = _knob(3, "stride-2 downsamplings in every generator encoder (H, W must divide 2**n)")
    n_blocks: int = _knob(9, "residual blocks per generator: n - n//2 end each encoder, n//2 start each decoder")
    norm: str = _knob("instance", "normalisation in generators and discriminators: instance | batch | none")
    flow_scale: float = _knob(20.0, "flow head output multiplier (pixels), as vid2vid's `* 20`")

    # --- discriminators (pix2pixHD multi-scale PatchGAN, eq. 8; face discriminator, 3.2) ---
    ndf: int = _knob(64, "discriminator base channels")
    d_layers: int = _knob(3, "stride-2 conv layers per PatchGAN discriminator")
    d_scales: int = _knob(2, "image scales of the multi-scale discriminator (each a 2x average-pool)")
    face_crop: int = _knob(64, "side in pixels of the square face crop fed to the face discriminator")
    face_d_layers: int = _knob(3, "stride-2 conv layers of the (single-scale) face discriminator")

    # --- losses (eq. 6-10, weights from paper 4.1) ---
    gan_objective: str = _loss_knob("vanilla",
                                    "adversarial objective: vanilla (eq. 8/10's log-likelihood) | lsgan | hinge")
    feature_matching: bool = _loss_knob(True, "add pix2pixHD discriminator feature-matching loss to the generator")
    lambda_rec: float = _loss_knob(10.0, "weight of the L1 reconstruction loss, eq. 6 (paper: 10)")
    lambda_per: float = _loss_knob(10.0, "weight of the VGG19 perceptual content loss, eq. 7 (paper: 10)")
    lambda_style: float = _loss_knob(10.0,
                                     "weight of the VGG19 Gram style term of eq. 7 (paper folds it into lambda_per)")
    lambda_adv: float = _loss_knob(1.0, "weight of the generator's adversarial term, eq. 9 (paper: 1, unweighted)")
    lambda_feat: float = _loss_knob(2.0, "weight of the feature-matching loss (pix2pixHD: 10, which made it 8.2 of the "
                                    "Layout GAN's 15.2 total at initialisation, more than every other term together)")
    lambda_flow: float = _loss_knob(1.0, "weight of the flow L1 to the reference flow, in pixels (vid2vid: 10; 1 here "
                                         "so this pixel-unit term does not outweigh the image terms, see losses.py)")
    lambda_warp: float = _loss_knob(10.0, "weight of the warp loss (L1 of the warped previous frame, image units)")
    lambda_face: float = _loss_knob(1.0, "weight of the face discriminator's adversarial loss")
    layout_limbs_weight: float = _loss_knob(1.0, "weight of the limbs class in the Layout GAN's cross-entropy (the "
                                            "paper gives no layout loss; 1 = unweighted): thin arms and legs are a "
                                            "few percent of the pixels, so an unweighted loss can miss them cheaply")
    perceptual_on: str = _loss_knob("foreground", "where the Region GAN's eq. 7 runs: foreground (once per frame on "
                                    "the eq. 11 sum) | regions (once per region, 5x the VGG19 cost)")

    # --- ablations (paper 4.4) ---
    gam: bool = _knob(True, "Global Alignment Module (eq. 4-5); False = source regions enter unaligned")
    wcn: bool = _knob(True, "Whole Composition Network (eq. 12-15); False = coarse foreground + background",
                      only=("wcn",))
    tam: bool = _knob(True, "Texture Alignment Module (eq. 12-13); False = plain addition F1 + F2", only=("wcn",))
    refine: bool = _knob(True, "Region GAN and WCN refine an image instead of drawing one from nothing: region i = "
                              "tanh(atanh(GAM(FG_s)) + D1) * L_i, FG = tanh(atanh(FG_r) + D1), m = sigmoid(logit(L_bg)"
                              " + D2), last layers zero-initialised; False = eq. 5 and 14 as written")
    layout_blend: bool = _knob(True, "Layout GAN output blended with its flow-warped previous layout (eq. 2c); "
                               "False = the raw layout of eq. 2a alone (no flow branch)", only=("layout",))
    wcn_blend: bool = _knob(True, "WCN output blended with its flow-warped previous frame (\"same strategy as Layout "
                            "GAN\"); False = eq. 15's frame alone (no flow branch)", only=("wcn",))
    tam_temperature: float = _knob(0.01, "softmax temperature of TAM's cosine affinity (eq. 12): 1 = the paper "
                                   "literally; 0.01 = CoCosNet's x100 scaling, sharp enough to align", only=("wcn",))

    @property
    def adversarial(self) -> bool:
        """Whether the multi-scale discriminator's terms (eq. 8-9, feature matching) reach the generator's loss. At
        zero weight they would add nothing to its gradient, so training skips the discriminator altogether."""
        return self.lambda_adv > 0 or (self.feature_matching and self.lambda_feat > 0)

    def __post_init__(self) -> None:
        positive = ("ngf", "n_downsample", "ndf", "d_layers", "d_scales", "face_crop", "face_d_layers")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_blocks < 0:
            raise ValueError(f"ModelConfig.n_blocks must be >= 0, got {self.n_blocks}")
        if self.gan_objective not in GAN_OBJECTIVES:
            raise ValueError(f"ModelConfig.gan_objective must be one of {GAN_OBJECTIVES}, got {self.gan_objective!r}")
        if self.perceptual_on not in PERCEPTUAL_ON:
            raise ValueError(f"ModelConfig.perceptual_on must be one of {PERCEPTUAL_ON}, got {self.perceptual_on!r}")
        if self.tam_temperature <= 0:
            raise ValueError(f"ModelConfig.tam_temperature must be > 0, got {self.tam_temperature}")
        if self.layout_limbs_weight <= 0:
            raise ValueError(f"ModelConfig.layout_limbs_weight must be > 0, got {self.layout_limbs_weight}")
        if self.norm not in NORMS:
            raise ValueError(f"ModelConfig.norm must be one of {NORMS}, got {self.norm!r}")
        for name in (f.name for f in fields(self) if f.name.startswith("lambda_")):
            if getattr(self, name) < 0:
                raise ValueError(f"ModelConfig.{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_profile(cls, name: str, **overrides: Any) -> "ModelConfig":
        """The named profile (``tiny`` | ``paper``) with ``overrides`` applied on top.

        Raises ``ValueError`` naming the valid choices for an unknown profile or field.
        """
        if name not in PROFILES:
            raise ValueError(f"unknown model profile {name!r}; choose one of {sorted(PROFILES)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s) {unknown}; valid fields: {sorted(known)}")
        return cls(**{**PROFILES[name], **overrides})

    def architecture(self, network: str | None = None) -> dict[str, Any]:
        """``{field: value}`` of the fields that shape the networks (every field but the loss knobs), or only
        ``network``'s (layout | region | wcn): what a checkpoint of it must match to load."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("loss")
                and (network is None or f.metadata.get("only") is None or network in f.metadata["only"])}

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{field: value}`` (for params files and checkpoint metadata)."""
        return asdict(self)

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """``{field: one-line description}``, for mirroring into a params schema."""
        return {f.name: f.metadata["help"] for f in fields(cls)}


PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {
        "ngf": 8, "n_downsample": 2, "n_blocks": 2, "ndf": 8, "d_layers": 2, "d_scales": 2,
        "face_crop": 32, "face_d_layers": 2,
    },
    "paper": {
        "ngf": 64, "n_downsample": 3, "n_blocks": 9, "ndf": 64, "d_layers": 3, "d_scales": 2,
        "face_crop": 64, "face_d_layers": 3,
    },
}
