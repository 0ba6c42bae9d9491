"""The project's own demo data: procedurally rendered articulated people with exact BODY_25 and ATR ground truth.

No third-party footage may ship with the project, so ``remot demo-data`` renders its default dataset here.
"""
from pipeline.demo_data.generate import (GENERATOR_VERSION, MEDIAPIPE_TO_BODY25, generate_demo_dataset,
                                         measure_pose_detection, plan_clip, read_video, render_clip)
from pipeline.demo_data.motions import MOTION_NAMES
from pipeline.demo_data.render import Appearance, BackgroundSpec, RenderedFrame, render_person
from pipeline.demo_data.skeleton import PoseParams, forward_kinematics

__all__ = [
    "GENERATOR_VERSION", "MEDIAPIPE_TO_BODY25", "MOTION_NAMES", "Appearance", "BackgroundSpec", "PoseParams",
    "RenderedFrame", "forward_kinematics", "generate_demo_dataset", "measure_pose_detection", "plan_clip",
    "read_video", "render_clip", "render_person",
]
