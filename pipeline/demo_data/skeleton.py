"""An articulated person skeleton with BODY_25 joints: bone lengths from body proportions, forward kinematics.

The skeleton is posed in 3-D body coordinates and projected orthographically, which gives foreshortening
(a knee lifted towards the camera, an arm pointing forward) and a depth per joint for free; the renderer uses
that depth to draw near limbs over far ones.

Body coordinates, in units of the person's standing height ``H`` (top of head to soles):
    x: towards the person's own LEFT; y: down; z: forward, out of the person's chest.
A person with ``yaw = 0`` faces the camera, so their left side appears on the image's RIGHT (+x in the
image). The body is rotated about the vertical axis by ``yaw`` (positive yaw turns the chest towards the image's
left, i.e. the person turns to their own right) and the camera then sees (x, y) with depth z towards it.

Limb directions are given as two absolute angles in radians (not relative to the parent bone):
    ``abd``  abduction: rotation away from the body's midline in the frontal plane (0 = hanging straight
             down, pi/2 = horizontal to the side, pi = straight up); positive is always outwards, for both sides.
    ``flex`` flexion: rotation forward, towards +z (pi/2 = pointing straight at the camera when yaw = 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.core.labels import BODY25, BODY25_JOINTS

# Segment lengths and offsets as fractions of standing height, from Drillis & Contini's anthropometric table
# (shoulder at 0.818 H, hip joint 0.530 H, knee 0.285 H, ankle 0.039 H above the floor).
PROPORTIONS: dict[str, float] = {
    "torso": 0.288,            # neck (base, between shoulders) to mid-hip
    "shoulder_half": 0.105,    # neck to each shoulder joint
    "hip_half": 0.058,         # mid-hip to each hip joint
    "upper_arm": 0.176,
    "forearm": 0.146,
    "thigh": 0.245,
    "shin": 0.246,
    "ankle_height": 0.039,     # ankle joint above the sole
    "head_centre": 0.098,      # neck to the centre of the head ellipse
    "head_half_width": 0.050,
    "head_half_height": 0.066,
}

SIDES = ("l", "r")


def side_sign(side: str) -> float:
    """+1 for the person's left (body +x), -1 for their right."""
    return 1.0 if side == "l" else -1.0


def limb_direction(abd: float, flex: float, side: str) -> np.ndarray:
    """Unit 3-D direction (body coords) of a bone with abduction ``abd`` and flexion ``flex`` on ``side``."""
    s = side_sign(side)
    return np.array([s * np.sin(abd) * np.cos(flex), np.cos(abd) * np.cos(flex), np.sin(flex)])


@dataclass
class LimbAngles:
    """Absolute angles (radians) of the two bones of one arm or leg; see the module docstring."""

    upper_abd: float = 0.1
    upper_flex: float = 0.0
    lower_abd: float = 0.1
    lower_flex: float = 0.0


@dataclass
class PoseParams:
    """Everything that places one frame's skeleton, apart from global scale and position.

    ``yaw`` turns the whole body about the vertical axis; ``lean`` tilts the upper body sideways in the image
    plane about mid-hip (positive = towards the person's left) and ``pitch`` bends it forward (arms move with
    it); ``head_tilt`` and ``head_yaw`` add to the lean for the head, which stays upright under ``pitch``.
    ``hip_shift`` moves mid-hip sideways (units of H). ``lift`` raises the whole body off the floor (units
    of H, for jumps). ``foot_out`` is how far each foot turns outwards (radians).
    """

    yaw: float = 0.0
    lean: float = 0.0
    pitch: float = 0.0
    head_tilt: float = 0.0
    head_yaw: float = 0.0
    hip_shift: float = 0.0
    lift: float = 0.0
    foot_out: float = 0.35
    foot_point: float = 0.0      # plantar flexion: toes pointing down, for jumps (radians)
    arms: dict[str, LimbAngles] = field(default_factory=lambda: {"l": LimbAngles(), "r": LimbAngles()})
    legs: dict[str, LimbAngles] = field(default_factory=lambda: {
        "l": LimbAngles(0.05, 0.0, 0.05, 0.0), "r": LimbAngles(0.05, 0.0, 0.05, 0.0)})


def _rot_z(angle: float) -> np.ndarray:
    """Rotation in the image plane (x towards y), i.e. a sideways lean."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(angle: float) -> np.ndarray:
    """Rotation about the person's left-right axis: "up" (-y) tips towards +z (forward) for positive angle."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def _rot_y(angle: float) -> np.ndarray:
    """Rotation about the vertical axis (turning on the spot): +x moves towards +z for positive angle."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


@dataclass
class Skeleton3D:
    """Posed joints in camera-aligned coordinates (units of H, origin at the floor below the body).

    ``points`` maps a joint name (BODY_25 names plus ``head_centre``) to (x, y, z): x right in the image, y down,
    z towards the camera. ``head_axes`` are the head ellipse's unit right/up/forward vectors in the same frame.
    """

    points: dict[str, np.ndarray]
    head_axes: np.ndarray          # (3, 3): rows = right (person's left), up, forward
    torso_axes: np.ndarray         # (3, 3): rows = across (to the person's left), down, forward
    yaw: float


def forward_kinematics(pose: PoseParams) -> Skeleton3D:
    """Pose the skeleton for ``pose`` and stand it on the floor.

    Returns joints in units of H with y = 0 at the floor: the lowest sole point touches y = 0 unless
    ``pose.lift`` raises the body (then it is ``-lift``). Nothing here knows about pixels.
    """
    P = PROPORTIONS
    body: dict[str, np.ndarray] = {}
    mid_hip = np.array([pose.hip_shift, 0.0, 0.0])
    body["mid_hip"] = mid_hip
    # Body +x is to the person's left, so a lean to the left tips the top towards +x.
    lean = _rot_z(-pose.lean) @ _rot_x(pose.pitch)
    up = lean @ np.array([0.0, -1.0, 0.0])
    across = lean @ np.array([1.0, 0.0, 0.0])
    neck = mid_hip + P["torso"] * up
    body["neck"] = neck
    for side in SIDES:
        s = side_sign(side)
        shoulder = neck + s * P["shoulder_half"] * across
        arm = pose.arms[side]
        elbow = shoulder + P["upper_arm"] * (lean @ limb_direction(arm.upper_abd, arm.upper_flex, side))
        wrist = elbow + P["forearm"] * (lean @ limb_direction(arm.lower_abd, arm.lower_flex, side))
        body[f"{side}_shoulder"], body[f"{side}_elbow"], body[f"{side}_wrist"] = shoulder, elbow, wrist

        # Legs hang from the pelvis, which does not lean with the upper body.
        hip = mid_hip + np.array([s * P["hip_half"], 0.0, 0.0])
        leg = pose.legs[side]
        knee = hip + P["thigh"] * limb_direction(leg.upper_abd, leg.upper_flex, side)
        ankle = knee + P["shin"] * limb_direction(leg.lower_abd, leg.lower_flex, side)
        body[f"{side}_hip"], body[f"{side}_knee"], body[f"{side}_ankle"] = hip, knee, ankle
        # Foot: heel under and behind the ankle, toes forward and turned out by foot_out.
        h = P["ankle_height"]
        out = s * pose.foot_out
        fwd = np.array([np.sin(out), 0.0, np.cos(out)])
        lateral = np.array([np.cos(out) * s, 0.0, -np.sin(out) * s])
        toe_drop = np.sin(pose.foot_point) * 0.10
        toe_fwd = np.cos(pose.foot_point) * 0.115
        body[f"{side}_heel"] = ankle + np.array([0.0, h, 0.0]) - 0.03 * fwd
        body[f"{side}_big_toe"] = ankle + np.array([0.0, h * 0.9 + toe_drop * 0.7, 0.0]) + toe_fwd * fwd \
            - 0.012 * lateral
        body[f"{side}_small_toe"] = ankle + np.array([0.0, h * 0.9 + toe_drop * 0.7, 0.0]) + 0.8 * toe_fwd * fwd \
            + 0.022 * lateral

    head_lean = _rot_z(-(pose.lean + pose.head_tilt))
    head_up = head_lean @ np.array([0.0, -1.0, 0.0])
    head_turn = _rot_y(pose.head_yaw)
    head_axes = np.stack([head_lean @ head_turn @ np.array([1.0, 0.0, 0.0]), head_up,
                          head_lean @ head_turn @ np.array([0.0, 0.0, 1.0])])
    hc = neck + P["head_centre"] * head_up
    body["head_centre"] = hc
    right, hup, fwd = head_axes
    hw = P["head_half_width"]
    body["nose"] = hc - 0.25 * P["head_half_height"] * hup + 0.95 * hw * fwd
    for side in SIDES:
        s = side_sign(side)
        body[f"{side}_eye"] = hc + 0.05 * P["head_half_height"] * hup + s * 0.42 * hw * right + 0.85 * hw * fwd
        body[f"{side}_ear"] = hc + s * 0.98 * hw * right - 0.05 * hw * fwd

    # Turn the whole body to face its yaw, then stand it on the floor (y = 0 at the lowest sole point).
    turn = _rot_y(pose.yaw)
    points = {name: turn @ p for name, p in body.items()}
    soles = [points[f"{s}_{part}"][1] for s in SIDES for part in ("heel", "big_toe", "small_toe")]
    floor_offset = -max(soles) - pose.lift
    for name in points:
        points[name] = points[name] + np.array([0.0, floor_offset, 0.0])
    torso_axes = np.stack([turn @ across, turn @ -up, turn @ np.array([0.0, 0.0, 1.0])])
    return Skeleton3D(points=points, head_axes=np.stack([turn @ a for a in head_axes]),
                      torso_axes=torso_axes, yaw=pose.yaw)


# BODY_25 joint name -> key in Skeleton3D.points.
_BODY25_SOURCE = {
    "nose": "nose", "neck": "neck", "mid_hip": "mid_hip",
    **{f"{s}_{j}": f"{s}_{j}" for s in SIDES for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle",
                                                         "eye", "ear", "big_toe", "small_toe", "heel")},
}


def project(skeleton: Skeleton3D, origin_xy: tuple[float, float], height_px: float) -> dict[str, np.ndarray]:
    """Image position of every skeleton point: name -> float array (x, y, z), x/y in pixels, z in pixels
    towards the camera. ``origin_xy`` is where the floor point below mid-hip lands (pixel centres at integers)."""
    ox, oy = origin_xy
    return {name: np.array([ox + height_px * p[0], oy + height_px * p[1], height_px * p[2]])
            for name, p in skeleton.points.items()}


def body25_array(points_px: dict[str, np.ndarray]) -> np.ndarray:
    """BODY_25 keypoints as float32 (25, 3): x, y in pixels and a third column of ones (visibility is decided
    later by the renderer, which knows what is occluded)."""
    out = np.ones((len(BODY25_JOINTS), 3), dtype=np.float32)
    for name, index in BODY25.items():
        out[index, :2] = points_px[_BODY25_SOURCE[name]][:2]
    return out
