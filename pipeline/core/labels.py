"""Label sets shared by every stage: SCHP's ATR parsing classes, OpenPose BODY_25 joints, REMOT's 6 regions.

These are fixed by the external models and the paper, not by the user, so they live in code; the 18→6
merge itself is a parameter (``params.yaml: merge.classes``) validated against these names.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

# SCHP's ATR label order (Li et al., "Self-Correction for Human Parsing"); index = label value.
ATR_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "sunglasses", "upper_clothes", "skirt", "pants", "dress", "belt",
    "left_shoe", "right_shoe", "face", "left_leg", "right_leg", "left_arm", "right_arm", "bag", "scarf",
)
ATR = {name: i for i, name in enumerate(ATR_LABELS)}

# SCHP's LIP label order (20 classes), for the LIP checkpoint.
LIP_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress", "coat", "socks", "pants",
    "jumpsuits", "scarf", "skirt", "face", "left_arm", "right_arm", "left_leg", "right_leg", "left_shoe",
    "right_shoe",
)

# REMOT's merged layout (paper 3.1): index = channel of L in the 6xHxW layout.
REGIONS: tuple[str, ...] = ("head", "top", "bottom", "shoes", "limbs", "background")
PERSON_REGIONS: tuple[str, ...] = REGIONS[:5]

DEFAULT_MERGE: dict[str, tuple[str, ...]] = {
    "head": ("hat", "hair", "sunglasses", "face"),
    "top": ("upper_clothes", "dress", "scarf"),
    "bottom": ("skirt", "pants", "belt"),
    "shoes": ("left_shoe", "right_shoe"),
    "limbs": ("left_arm", "right_arm", "left_leg", "right_leg"),
    "background": ("background", "bag"),
}

# OpenPose BODY_25 keypoint order.
BODY25_JOINTS: tuple[str, ...] = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "mid_hip",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
    "l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel",
)
BODY25 = {name: i for i, name in enumerate(BODY25_JOINTS)}

# OpenPose's render pairs (POSE_BODY_25_PAIRS_RENDER_GPU) and per-keypoint colours (RGB); a limb takes the
# colour of its second keypoint, as OpenPose's renderer does.
BODY25_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12), (12, 13),
    (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21), (11, 22),
    (22, 23), (11, 24),
)
BODY25_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255), (85, 0, 255), (0, 0, 255), (0, 0, 255),
    (0, 0, 255), (0, 255, 255), (0, 255, 255), (0, 255, 255),
)


def validate_merge_map(mapping: Mapping[str, Iterable[str]]) -> None:
    """Check that ``mapping`` sends every ATR class to exactly one REMOT region.

    Raises ``ValueError`` naming the culprit when a region is not one of ``labels.REGIONS``, a class is not an
    ATR label name, a class is mapped twice, or an ATR class is not mapped at all. Regions may be left out or
    given no classes (that region then never appears in the layout). Returns None when the map is valid.
    """
    if not isinstance(mapping, Mapping):
        raise ValueError(f"merge map must be a mapping region -> list of ATR class names, got {type(mapping).__name__}")
    owner: dict[str, str] = {}
    for region, classes in mapping.items():
        if region not in REGIONS:
            raise ValueError(f"merge map: unknown region {region!r}; allowed regions are {', '.join(REGIONS)}")
        if isinstance(classes, str):
            raise ValueError(f"merge map: region {region!r} must list class names, got the string {classes!r}")
        for name in classes:
            if name not in ATR_LABELS:
                raise ValueError(f"merge map: region {region!r} lists unknown ATR class {name!r}; "
                                 f"allowed class names are {', '.join(ATR_LABELS)}")
            if name in owner:
                where = (f"twice in region {region!r}" if owner[name] == region
                         else f"in both {owner[name]!r} and {region!r}")
                raise ValueError(f"merge map: ATR class {name!r} is mapped {where}; map each class once")
            owner[name] = region
    missing = [name for name in ATR_LABELS if name not in owner]
    if missing:
        raise ValueError(f"merge map: ATR class(es) {', '.join(repr(m) for m in missing)} not mapped to any region; "
                         f"add each to one of {', '.join(REGIONS)}")
