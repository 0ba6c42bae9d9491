"""Motions of the demo person as smooth functions of time, plus each clip's global scale and position drift.

Every motion maps a time ``t`` (seconds) and a few per-clip knobs (tempo, phase, facing direction, amplitude;
drawn from the clip's random generator) to a :class:`~pipeline.demo_data.skeleton.PoseParams`. Being smooth
functions of time, consecutive frames move a little and the ground truth has no jitter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.demo_data.skeleton import LimbAngles, PoseParams

TAU = 2.0 * np.pi


@dataclass(frozen=True)
class MotionKnobs:
    """Per-clip variation of a motion: tempo (cycles per second), phase (radians), base yaw (radians, 0 = facing
    the camera) and amplitude (1 = nominal)."""

    tempo: float
    phase: float
    yaw: float
    amplitude: float


def _relaxed_arm(abd: float = 0.12, bend: float = 0.1) -> LimbAngles:
    """An arm hanging at the side, elbow slightly bent forward."""
    return LimbAngles(abd, 0.0, abd * 0.8, bend)


def _standing_leg(abd: float = 0.05) -> LimbAngles:
    return LimbAngles(abd, 0.0, abd, 0.0)


def walk(t: float, k: MotionKnobs) -> PoseParams:
    """Walking in place: knees lift in turn, arms swing against the legs, slight body sway."""
    phi = TAU * k.tempo * t + k.phase
    a = k.amplitude
    legs, arms = {}, {}
    for side, offset in (("l", 0.0), ("r", np.pi)):
        lift = max(0.0, np.sin(phi + offset)) * 0.95 * a
        legs[side] = LimbAngles(0.06, lift, 0.05, lift - 1.5 * lift)
        swing = -0.55 * a * np.sin(phi + offset)
        arms[side] = LimbAngles(0.14, swing, 0.10, swing + 0.35)
    return PoseParams(yaw=k.yaw + 0.08 * np.sin(phi), lean=0.03 * np.sin(phi), hip_shift=0.008 * np.sin(phi),
                      head_tilt=-0.02 * np.sin(phi), arms=arms, legs=legs)


def wave(t: float, k: MotionKnobs) -> PoseParams:
    """Waving: one arm raised with the forearm swinging above the head, the other arm relaxed."""
    phi = TAU * k.tempo * t + k.phase
    wave_side = "r" if k.phase < np.pi else "l"
    other = "l" if wave_side == "r" else "r"
    arms = {
        wave_side: LimbAngles(2.0 + 0.08 * np.sin(phi), 0.15, 2.75 + 0.45 * k.amplitude * np.sin(phi), 0.2),
        other: _relaxed_arm(0.15, 0.15),
    }
    legs = {"l": _standing_leg(0.07), "r": _standing_leg(0.07)}
    return PoseParams(yaw=k.yaw + 0.05 * np.sin(0.5 * phi), lean=0.05 * np.sin(0.5 * phi),
                      head_tilt=0.06 * np.sin(0.5 * phi + 1.0), arms=arms, legs=legs)


def jumping_jacks(t: float, k: MotionKnobs) -> PoseParams:
    """Jumping jacks: arms sweep from the sides to overhead while the legs spread; hops between the two."""
    phi = TAU * k.tempo * t + k.phase
    p = 0.5 - 0.5 * np.cos(phi)      # 0 = arms down, legs together; 1 = arms up, legs apart
    a = k.amplitude
    arm_abd = 0.15 + 2.55 * p * a
    arms = {s: LimbAngles(arm_abd, 0.0, arm_abd + 0.15 * p, 0.05) for s in ("l", "r")}
    leg_abd = 0.04 + 0.24 * p * a
    legs = {s: LimbAngles(leg_abd, 0.0, leg_abd * 0.9, 0.0) for s in ("l", "r")}
    hop = abs(np.sin(phi)) * 0.035 * a   # two hops per cycle: going out and coming back in
    return PoseParams(yaw=k.yaw, lift=hop, foot_point=hop * 12.0, arms=arms, legs=legs,
                      head_tilt=-0.05 * p)


def side_step(t: float, k: MotionKnobs) -> PoseParams:
    """Turning from one side to the other while stepping sideways, arms swinging loosely."""
    phi = TAU * k.tempo * t + k.phase
    a = k.amplitude
    step = np.sin(phi)
    legs = {
        "l": LimbAngles(0.05 + 0.16 * a * max(0.0, step), 0.1 * max(0.0, -step), 0.05, 0.0),
        "r": LimbAngles(0.05 + 0.16 * a * max(0.0, -step), 0.1 * max(0.0, step), 0.05, 0.0),
    }
    arms = {
        "l": LimbAngles(0.2 + 0.25 * max(0.0, step), 0.2 * step, 0.15, 0.2 * step + 0.4),
        "r": LimbAngles(0.2 + 0.25 * max(0.0, -step), -0.2 * step, 0.15, -0.2 * step + 0.4),
    }
    return PoseParams(yaw=k.yaw + 0.85 * a * np.sin(phi + 0.6), hip_shift=0.05 * step, lean=-0.04 * step,
                      head_yaw=0.15 * np.sin(phi + 0.6), arms=arms, legs=legs)


def squat(t: float, k: MotionKnobs) -> PoseParams:
    """Squats: hips drop as the thighs come forward and the knees open, arms rise forward for balance."""
    phi = TAU * k.tempo * t + k.phase
    p = (0.5 - 0.5 * np.cos(phi)) * k.amplitude
    pitch = 0.45 * p          # the torso leans forward to keep balance over the feet
    legs = {s: LimbAngles(0.10 + 0.16 * p, 1.25 * p, 0.08 + 0.05 * p, -0.35 * p) for s in ("l", "r")}
    # Arm angles are in the torso's frame, which is already pitched forward.
    arms = {s: LimbAngles(0.15 + 0.1 * p, 1.35 * p - pitch, 0.12 + 0.1 * p, 1.45 * p - pitch)
            for s in ("l", "r")}
    return PoseParams(yaw=k.yaw, pitch=pitch, arms=arms, legs=legs, foot_out=0.45)


def stretch(t: float, k: MotionKnobs) -> PoseParams:
    """Side stretch: the upper body bends side to side, the arm on the long side reaching overhead, the other
    hand resting on the hip."""
    phi = TAU * k.tempo * t + k.phase
    bend = np.sin(phi) * k.amplitude
    lean = 0.32 * bend
    # Bending to the person's left (lean > 0) lifts the right arm overhead.
    up_side, hip_side = ("r", "l") if bend >= 0 else ("l", "r")
    reach = abs(bend)
    arms = {
        up_side: LimbAngles(0.3 + 2.3 * reach, 0.0, 0.4 + 2.5 * reach, 0.0),
        hip_side: LimbAngles(0.75, 0.1, -0.9, 0.2),
    }
    legs = {"l": _standing_leg(0.13), "r": _standing_leg(0.13)}
    return PoseParams(yaw=k.yaw, lean=lean, head_tilt=0.15 * bend, hip_shift=-0.02 * bend, arms=arms, legs=legs)


# Name -> (motion, tempo range in cycles/s, |base yaw| range in radians). Tempi give a clear movement within a
# ~1.3 s clip (32 frames at 25 fps).
MOTIONS: dict[str, tuple[Callable[[float, MotionKnobs], PoseParams], tuple[float, float], tuple[float, float]]] = {
    "walk": (walk, (0.8, 1.1), (0.0, 0.45)),
    "wave": (wave, (1.4, 2.0), (0.0, 0.3)),
    "jumping_jacks": (jumping_jacks, (0.8, 1.0), (0.0, 0.2)),
    "side_step": (side_step, (0.6, 0.8), (0.0, 0.15)),
    "squat": (squat, (0.7, 0.9), (0.3, 0.6)),
    "stretch": (stretch, (0.6, 0.8), (0.0, 0.25)),
}
MOTION_NAMES: tuple[str, ...] = tuple(MOTIONS)


def draw_knobs(motion: str, rng: np.random.Generator) -> MotionKnobs:
    """Random per-clip knobs for ``motion`` (tempo, phase, yaw with a random sign, amplitude 0.85..1.1)."""
    _, (t_lo, t_hi), (y_lo, y_hi) = MOTIONS[motion]
    return MotionKnobs(tempo=float(rng.uniform(t_lo, t_hi)), phase=float(rng.uniform(0.0, TAU)),
                       yaw=float(rng.choice([-1.0, 1.0]) * rng.uniform(y_lo, y_hi)),
                       amplitude=float(rng.uniform(0.85, 1.1)))


def pose_at(motion: str, t: float, knobs: MotionKnobs) -> PoseParams:
    """The skeleton parameters of ``motion`` at time ``t`` seconds."""
    return MOTIONS[motion][0](t, knobs)


@dataclass(frozen=True)
class Drift:
    """Slow global movement of the person over a clip: the floor point below mid-hip moves by ``dx``, ``dy``
    (fractions of frame width/height over the whole clip, linear plus a gentle sinusoid) and the height
    changes by the factor ``1 + ds`` (walking slightly towards or away from the camera)."""

    dx: float
    dy: float
    ds: float
    wobble: float
    wobble_phase: float

    def at(self, u: float) -> tuple[float, float, float]:
        """(x offset, y offset) as fractions of width/height and the scale factor at clip progress ``u`` in
        0..1; all are 0/0/1 at the clip's middle."""
        c = u - 0.5
        wob = self.wobble * np.sin(TAU * u + self.wobble_phase)
        return self.dx * c + wob, self.dy * c, 1.0 + self.ds * c


def draw_drift(rng: np.random.Generator) -> Drift:
    """Random drift: up to 12% of the width sideways, 3% of the height vertically, +-6% in scale."""
    return Drift(dx=float(rng.uniform(-0.12, 0.12)), dy=float(rng.uniform(-0.03, 0.03)),
                 ds=float(rng.uniform(-0.06, 0.06)), wobble=float(rng.uniform(0.0, 0.02)),
                 wobble_phase=float(rng.uniform(0.0, TAU)))
