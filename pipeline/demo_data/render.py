"""Draws the demo person (filled, shaded, textured body parts) and writes each pixel's ATR label as it goes.

Every body part is painted with an analytic coverage ``alpha`` (anti-aliased edges on the RGB); the same part
writes its ATR label and an internal part id wherever ``alpha >= 0.5``. Parts are painted back to front, so
the label map is exact by construction: a pixel's label is that of the front-most part covering it. The part
id map decides which joints are visible (a joint hidden behind the torso gets confidence 0).

Conventions: images are RGB (not OpenCV's BGR) float32 0..255 while drawing, uint8 when returned; pixel
centres sit at integer coordinates (x = column, y = row); "left"/"right" in part and label names are the
person's own (a person facing the camera has their left side on the image's right).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from pipeline.core.labels import ATR, BODY25_JOINTS
from pipeline.demo_data.skeleton import PROPORTIONS, SIDES, Skeleton3D, body25_array, project

# Light from the upper left, towards the person; Lambert shading with ambient keeps the shadow side readable.
_LIGHT = np.array([-0.45, -0.55, 0.70]) / np.linalg.norm([-0.45, -0.55, 0.70])
_AMBIENT, _DIFFUSE = 0.42, 0.68

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 140, 100), (160, 105, 70), (120, 78, 52),
)
HAIR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (28, 22, 20), (60, 38, 24), (105, 70, 40), (170, 120, 60), (140, 60, 30), (45, 40, 40),
)
CLOTH_COLOURS: tuple[tuple[int, int, int], ...] = (
    (200, 40, 45), (30, 60, 140), (40, 120, 70), (235, 200, 60), (240, 240, 235), (35, 35, 40),
    (120, 60, 140), (230, 120, 40), (90, 160, 200), (150, 150, 155), (180, 70, 110), (110, 80, 50),
    (20, 90, 100), (250, 170, 180),
)
DENIM_COLOURS: tuple[tuple[int, int, int], ...] = ((50, 75, 120), (35, 45, 70), (90, 120, 165), (30, 30, 35))
SHOE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (25, 25, 25), (240, 240, 240), (120, 70, 40), (180, 30, 30), (60, 60, 80),
)

TOP_PATTERNS = ("stripes", "checks", "print")
PANTS_PATTERNS = ("denim", "twill", "plain")
SKIRT_PATTERNS = ("pleats", "dots", "plaid")
SLEEVES = ("none", "short", "long")


@dataclass(frozen=True)
class Appearance:
    """How one clip's person looks: colours are RGB tuples; ``bottom`` is "pants" or "skirt"."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: str                      # "short" | "long"
    top: tuple[int, int, int]
    top_accent: tuple[int, int, int]
    top_pattern: str                     # one of TOP_PATTERNS
    sleeves: str                         # one of SLEEVES
    bottom: str                          # "pants" | "skirt"
    bottom_colour: tuple[int, int, int]
    bottom_accent: tuple[int, int, int]
    bottom_pattern: str                  # one of PANTS_PATTERNS or SKIRT_PATTERNS
    pants_length: float                  # fraction of the shin covered by pants (1 = to the ankle)
    skirt_length: float                  # hem position as a fraction of the thigh below the hips
    shoes: tuple[int, int, int]


def _pick(rng: np.random.Generator, options: tuple, avoid: tuple[tuple[int, int, int], ...] = (),
          min_distance: float = 90.0):
    """A random entry of ``options`` at least ``min_distance`` (RGB Euclidean) from every colour in ``avoid``;
    falls back to the farthest option when none qualifies."""
    order = rng.permutation(len(options))
    for i in order:
        if all(np.linalg.norm(np.subtract(options[i], a)) >= min_distance for a in avoid):
            return options[i]
    return max(options, key=lambda o: min(np.linalg.norm(np.subtract(o, a)) for a in avoid))


def draw_appearance(rng: np.random.Generator, bottom: str) -> Appearance:
    """Random clothing and colours; top, bottom, skin and shoes are kept visibly different from each other."""
    if bottom not in ("pants", "skirt"):
        raise ValueError(f"bottom must be 'pants' or 'skirt', got {bottom!r}")
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    top = _pick(rng, CLOTH_COLOURS, (skin,))
    top_accent = _pick(rng, CLOTH_COLOURS, (top,), 120.0)
    if bottom == "pants":
        pattern = PANTS_PATTERNS[rng.integers(len(PANTS_PATTERNS))]
        pool = DENIM_COLOURS if pattern == "denim" else CLOTH_COLOURS
    else:
        pattern = SKIRT_PATTERNS[rng.integers(len(SKIRT_PATTERNS))]
        pool = CLOTH_COLOURS
    bottom_colour = _pick(rng, pool, (top, skin), 80.0)
    bottom_accent = _pick(rng, CLOTH_COLOURS, (bottom_colour,), 110.0)
    shoes = _pick(rng, SHOE_COLOURS, (bottom_colour, skin), 70.0)
    return Appearance(
        skin=skin, hair=hair, hair_style=("short", "long")[rng.integers(2)], top=top, top_accent=top_accent,
        top_pattern=TOP_PATTERNS[rng.integers(len(TOP_PATTERNS))], sleeves=SLEEVES[rng.integers(len(SLEEVES))],
        bottom=bottom, bottom_colour=bottom_colour, bottom_accent=bottom_accent, bottom_pattern=pattern,
        pants_length=float(rng.choice([1.0, 1.0, 0.8])), skirt_length=float(rng.uniform(0.55, 0.95)),
        shoes=shoes)


# ----------------------------------------------------------------------------------------------- background

@dataclass(frozen=True)
class BackgroundSpec:
    """A static scene: wall (vertical gradient, optional pattern) above ``horizon`` (fraction of the height),
    floor (pattern) below, and a few flat shapes on the wall. Colours are RGB tuples."""

    wall_top: tuple[int, int, int]
    wall_bottom: tuple[int, int, int]
    wall_pattern: str                         # "plain" | "stripes" | "noise"
    floor: tuple[int, int, int]
    floor_pattern: str                        # "planks" | "tiles" | "plain"
    horizon: float
    shapes: tuple[tuple, ...] = field(default=())   # (kind, cx, cy, size, rgb) with cx, cy, size in frame fractions
    noise_seed: int = 0


def draw_background(rng: np.random.Generator, avoid: tuple[tuple[int, int, int], ...], floor_y: float
                    ) -> BackgroundSpec:
    """A random scene whose wall colour stays away from the colours in ``avoid`` (the clothes), with the
    wall/floor line somewhat above ``floor_y`` (fraction of the height where the person stands)."""
    light = rng.random() < 0.6
    for _ in range(20):
        base = rng.uniform(175, 245, 3) if light else rng.uniform(60, 150, 3)
        if all(np.linalg.norm(base - np.array(a)) > 70 for a in avoid):
            break
    wall_top = tuple(int(v) for v in np.clip(base + rng.uniform(-15, 15, 3), 0, 255))
    wall_bottom = tuple(int(v) for v in np.clip(base * rng.uniform(0.8, 0.95), 0, 255))
    floor = tuple(int(v) for v in np.clip(rng.uniform(70, 200, 3) * np.array([1.0, 0.85, 0.7]), 0, 255))
    shapes = []
    kinds = ("frame", "circle", "band", "plant")
    for _ in range(int(rng.integers(2, 4))):
        kind = kinds[rng.integers(len(kinds))]
        cx = float(rng.choice([rng.uniform(0.05, 0.25), rng.uniform(0.75, 0.95)]))
        colour = tuple(int(v) for v in rng.uniform(30, 230, 3))
        shapes.append((kind, round(cx, 4), round(float(rng.uniform(0.12, 0.5)), 4),
                       round(float(rng.uniform(0.08, 0.2)), 4), colour))
    return BackgroundSpec(
        wall_top=wall_top, wall_bottom=wall_bottom,
        wall_pattern=("plain", "stripes", "noise")[rng.integers(3)],
        floor=floor, floor_pattern=("planks", "tiles", "plain")[rng.integers(3)],
        horizon=round(float(floor_y - rng.uniform(0.15, 0.3)), 4), shapes=tuple(shapes),
        noise_seed=int(rng.integers(2**31)))


def render_background(spec: BackgroundSpec, height: int, width: int) -> np.ndarray:
    """The scene as float32 RGB (height, width, 3) in 0..255."""
    rng = np.random.default_rng(spec.noise_seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = spec.horizon * height
    g = np.clip(ys / max(horizon, 1.0), 0, 1)[..., None]
    img = (1 - g) * np.array(spec.wall_top, np.float32) + g * np.array(spec.wall_bottom, np.float32)
    if spec.wall_pattern == "stripes":
        img *= (1.0 + 0.06 * (np.sin(xs * (2 * np.pi / 14.0)) > 0))[..., None]
    elif spec.wall_pattern == "noise":
        noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 2.0)
        img *= (1.0 + 0.12 * noise)[..., None]
    for kind, cx, cy, size, colour in spec.shapes:
        c = (int(cx * width), int(cy * height))
        s = int(size * width)
        col = tuple(float(v) for v in colour)
        if kind == "frame":
            cv2.rectangle(img, (c[0] - s, c[1] - s), (c[0] + s, c[1] + int(0.7 * s)), col, -1, cv2.LINE_AA)
            inner = tuple(float(255 - v * 0.5) for v in colour)
            cv2.rectangle(img, (c[0] - s + 3, c[1] - s + 3), (c[0] + s - 3, c[1] + int(0.7 * s) - 3), inner, -1,
                          cv2.LINE_AA)
        elif kind == "circle":
            cv2.circle(img, c, s, col, -1, cv2.LINE_AA)
        elif kind == "band":
            pts = np.array([[c[0] - s, 0], [c[0] + s, 0], [c[0] + 3 * s, int(horizon)],
                            [c[0] + s, int(horizon)]], np.int32)
            cv2.fillPoly(img, [pts], col, cv2.LINE_AA)
        elif kind == "plant":
            base_y = int(horizon) + 2
            cv2.rectangle(img, (c[0] - s // 2, base_y - s), (c[0] + s // 2, base_y), (150.0, 80.0, 50.0), -1)
            for k in range(5):
                angle = -np.pi / 2 + (k - 2) * 0.4
                tip = (int(c[0] + 1.6 * s * np.cos(angle)), int(base_y - s - 1.6 * s * abs(np.sin(angle))))
                cv2.ellipse(img, ((c[0] + tip[0]) // 2, (base_y - s + tip[1]) // 2), (max(s // 3, 2), s),
                            float(np.degrees(angle) + 90), 0, 360, (40.0, 120.0 + 15 * k, 50.0), -1, cv2.LINE_AA)
    floor_rows = ys >= horizon
    depth = np.clip((ys - horizon) / max(height - horizon, 1.0), 0, 1)
    floor = np.array(spec.floor, np.float32) * (0.8 + 0.25 * depth)[..., None]
    if spec.floor_pattern == "planks":
        # Boards converge towards the centre like a floor seen from the front.
        x_persp = (xs - width / 2) / (0.35 + 0.65 * depth) + width / 2
        floor *= (1.0 - 0.18 * (np.mod(x_persp, 22.0) < 1.5))[..., None]
        floor *= (1.0 + 0.05 * np.sin(x_persp * 0.9 + 3 * np.floor(x_persp / 22.0)))[..., None]
    elif spec.floor_pattern == "tiles":
        x_persp = (xs - width / 2) / (0.35 + 0.65 * depth) + width / 2
        rows = np.sqrt(depth) * 6.0
        floor *= (0.92 + 0.12 * ((np.floor(x_persp / 26.0) + np.floor(rows)) % 2))[..., None]
    img = np.where(floor_rows[..., None], floor, img)
    # A soft skirting line where wall meets floor.
    line = np.exp(-((ys - horizon) / 1.2) ** 2)[..., None]
    img = img * (1 - 0.35 * line)
    return np.clip(img, 0, 255).astype(np.float32)


# -------------------------------------------------------------------------------------------- primitives

@dataclass
class Coverage:
    """A primitive rasterised over the box ``(y0, y1, x0, x1)``: ``alpha`` (h, w) float32 in 0..1, a surface
    normal (nx, ny, nz) per pixel for shading, and primitive-local texture coordinates ``u`` (across) and
    ``v`` (along) in pixels."""

    box: tuple[int, int, int, int]
    alpha: np.ndarray
    normal: tuple[np.ndarray, np.ndarray, np.ndarray]
    u: np.ndarray
    v: np.ndarray


def _box(xmin: float, xmax: float, ymin: float, ymax: float, shape: tuple[int, int]):
    h, w = shape
    x0, x1 = max(int(np.floor(xmin)) - 1, 0), min(int(np.ceil(xmax)) + 2, w)
    y0, y1 = max(int(np.floor(ymin)) - 1, 0), min(int(np.ceil(ymax)) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def _grid(box):
    """Pixel-centre coordinates of a box as broadcastable (1, w) and (h, 1) float32 arrays."""
    y0, y1, x0, x1 = box
    return np.arange(x0, x1, dtype=np.float32)[None, :], np.arange(y0, y1, dtype=np.float32)[:, None]


def capsule(p0, p1, r0: float, r1: float, shape) -> Coverage | None:
    """A tapered capsule (cylinder seen side-on) from ``p0`` (radius ``r0``) to ``p1`` (radius ``r1``), pixels.
    ``u`` runs across the axis (-r..r), ``v`` along it from p0."""
    (ax, ay), (bx, by) = (float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1]))
    box = _box(min(ax - r0, bx - r1), max(ax + r0, bx + r1), min(ay - r0, by - r1), max(ay + r0, by + r1), shape)
    if box is None:
        return None
    X, Y = _grid(box)
    dx, dy = bx - ax, by - ay
    length2 = max(dx * dx + dy * dy, 1e-6)
    t = np.clip(((X - ax) * dx + (Y - ay) * dy) / length2, 0.0, 1.0)
    ex, ey = X - (ax + t * dx), Y - (ay + t * dy)
    dist = np.sqrt(ex * ex + ey * ey)
    r = r0 + t * (r1 - r0)
    alpha = np.clip(r - dist + 0.5, 0.0, 1.0)
    nx, ny = ex / r, ey / r
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    length = np.sqrt(length2)
    u = (ex * -dy + ey * dx) / length
    return Coverage(box, alpha, (nx, ny, nz), u, t * length)


def ellipse(centre, a: float, b: float, x_axis, shape) -> Coverage | None:
    """A filled ellipse (shaded as a dome) with semi-axes ``a`` along the unit vector ``x_axis`` and ``b``
    perpendicular to it (pointing 90 degrees clockwise on screen, i.e. "down" when x_axis points right).
    ``u``, ``v`` are the local coordinates in pixels."""
    cx, cy = float(centre[0]), float(centre[1])
    r = max(a, b)
    box = _box(cx - r, cx + r, cy - r, cy + r, shape)
    if box is None:
        return None
    X, Y = _grid(box)
    ux, uy = float(x_axis[0]), float(x_axis[1])
    lx = (X - cx) * ux + (Y - cy) * uy
    ly = -(X - cx) * uy + (Y - cy) * ux
    q = np.sqrt((lx / a) ** 2 + (ly / b) ** 2)
    alpha = np.clip((1.0 - q) * min(a, b) + 0.5, 0.0, 1.0)
    nlx, nly = np.clip(lx / a, -1, 1), np.clip(ly / b, -1, 1)
    nx, ny = nlx * ux - nly * uy, nlx * uy + nly * ux
    nz = np.sqrt(np.clip(1.0 - nlx ** 2 - nly ** 2, 0.0, 1.0))
    return Coverage(box, alpha, (nx, ny, nz), lx, ly)


def polygon(points: np.ndarray, axis_origin, axis_dir, half_width: float, shape) -> Coverage | None:
    """A filled polygon shaded as a cylinder around the axis through ``axis_origin`` along unit ``axis_dir``
    with radius ``half_width`` px. ``u`` is the signed distance across the axis, ``v`` the distance along it."""
    pts = np.asarray(points, np.float64)
    box = _box(pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max(), shape)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    # 4 fractional bits of sub-pixel precision; LINE_AA gives the coverage ramp along the edges.
    fixed = np.round((pts - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 255, cv2.LINE_AA, shift=4)
    alpha = mask.astype(np.float32) / 255.0
    X, Y = _grid(box)
    ox, oy = float(axis_origin[0]), float(axis_origin[1])
    ax, ay = float(axis_dir[0]), float(axis_dir[1])
    v = (X - ox) * ax + (Y - oy) * ay
    u = (X - ox) * ay - (Y - oy) * ax           # across = (ay, -ax): image right when the axis points down
    s = np.clip(u / max(half_width, 1.0), -1.0, 1.0)
    nx, ny = s * ay, -s * ax
    nz = np.sqrt(np.clip(1.0 - s * s, 0.0, 1.0))
    return Coverage(box, alpha, (nx, ny, nz), u, v)


def shade(cov: Coverage) -> np.ndarray:
    """Lambert shading factor (h, w, 1) for a coverage's normals."""
    nx, ny, nz = cov.normal
    lam = np.maximum(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0.0)
    return (_AMBIENT + _DIFFUSE * lam)[..., None].astype(np.float32)


class Canvas:
    """RGB image, ATR label map and part-id map painted together, back to front."""

    def __init__(self, background: np.ndarray):
        self.rgb = background.astype(np.float32).copy()
        self.shape = self.rgb.shape[:2]
        self.labels = np.zeros(self.shape, np.uint8)
        self.parts = np.zeros(self.shape, np.uint8)
        self.part_names: list[str] = ["background"]

    def part_id(self, name: str) -> int:
        if name not in self.part_names:
            self.part_names.append(name)
        return self.part_names.index(name)

    def paint(self, cov: Coverage | None, colour: np.ndarray, label: int | None, part: str | None,
              opacity: float = 1.0) -> None:
        """Composite ``colour`` ((h, w, 3) or (3,), 0..255) with the coverage; where alpha >= 0.5 also set the
        label and part (``None`` leaves them, for shadows and highlights)."""
        if cov is None:
            return
        y0, y1, x0, x1 = cov.box
        a = (cov.alpha * opacity)[..., None]
        region = self.rgb[y0:y1, x0:x1]
        region += a * (np.asarray(colour, np.float32) - region)
        if label is not None:
            hard = cov.alpha >= 0.5
            self.labels[y0:y1, x0:x1][hard] = label
            self.parts[y0:y1, x0:x1][hard] = self.part_id(part or "")


# ---------------------------------------------------------------------------------------------- textures

def _mix(c1, c2, m: np.ndarray) -> np.ndarray:
    m = m[..., None].astype(np.float32)
    return (1 - m) * np.asarray(c1, np.float32) + m * np.asarray(c2, np.float32)


def _hash_noise(u: np.ndarray, v: np.ndarray, cell: float) -> np.ndarray:
    """Deterministic value noise in -1..1 on a grid of ``cell`` (same units as u, v), attached to the cloth."""
    iu, iv = np.floor(u / cell), np.floor(v / cell)
    return (np.modf(np.abs(np.sin(iu * 12.9898 + iv * 78.233)) * 43758.5453)[0] * 2.0 - 1.0).astype(np.float32)


def top_colour(app: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Base colour of the top at cloth coordinates ``u`` (across, to the image right) and ``v`` (down from
    the neck), both in units of the person's height."""
    if app.top_pattern == "stripes":
        return _mix(app.top, app.top_accent, np.clip(np.sin(v * (2 * np.pi / 0.045)) * 4 + 0.5, 0, 1))
    if app.top_pattern == "checks":
        return _mix(app.top, app.top_accent,
                    np.clip(np.sin(u * (2 * np.pi / 0.06)) * np.sin(v * (2 * np.pi / 0.06)) * 6 + 0.5, 0, 1))
    # "print": a ring-and-diamond motif on the chest, and a contrasting hem band.
    r = np.sqrt(u ** 2 + (v - 0.11) ** 2)
    motif = (np.abs(r - 0.045) < 0.011) | (np.abs(u) + np.abs(v - 0.11) < 0.022) | (v > 0.27)
    return _mix(app.top, app.top_accent, motif.astype(np.float32))


def bottom_colour(app: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Base colour of pants or skirt at cloth coordinates in units of the person's height (u across, v along
    the limb or down from the waist)."""
    p = app.bottom_pattern
    if p == "denim":
        n = _hash_noise(u, v, 0.004)
        seam = np.abs(u - 0.025) < 0.003
        c = np.asarray(app.bottom_colour, np.float32) * (1 + 0.08 * n)[..., None]
        return np.where(seam[..., None], c * 0.7 + 60, c)
    if p == "twill":
        return np.asarray(app.bottom_colour, np.float32) * (1 + 0.1 * np.sin((u + v) * (2 * np.pi / 0.012)))[..., None]
    if p == "plain":
        return np.broadcast_to(np.asarray(app.bottom_colour, np.float32), u.shape + (3,)).copy()
    if p == "pleats":
        return np.asarray(app.bottom_colour, np.float32) * (1 + 0.18 * np.sin(u * (2 * np.pi / 0.03)))[..., None]
    if p == "dots":
        du, dv = np.mod(u, 0.04) - 0.02, np.mod(v, 0.04) - 0.02
        return _mix(app.bottom_colour, app.bottom_accent, (du ** 2 + dv ** 2 < 0.008 ** 2).astype(np.float32))
    # plaid
    m = 0.5 * (np.sin(u * (2 * np.pi / 0.05)) > 0.6) + 0.5 * (np.sin(v * (2 * np.pi / 0.05)) > 0.6)
    return _mix(app.bottom_colour, app.bottom_accent, m)


# ------------------------------------------------------------------------------------------------ person

# Radii in units of height: (start, end) of each capsule.
_RADII = {
    "upper_arm": (0.034, 0.027), "forearm": (0.027, 0.020), "hand": (0.022, 0.017),
    "thigh": (0.056, 0.039), "shin": (0.038, 0.025), "neck": (0.027, 0.027),
}
# Which drawn parts a BODY_25 joint belongs to: the joint is visible when one of them is on top near it.
_JOINT_OWNERS: dict[str, tuple[str, ...]] = {
    "nose": ("face",), "neck": ("torso", "neck"), "mid_hip": ("torso", "pelvis", "skirt"),
    **{f"{s}_{j}": parts for s in SIDES for j, parts in {
        "shoulder": ("torso", f"{s}_upper_arm"), "elbow": (f"{s}_upper_arm", f"{s}_forearm"),
        "wrist": (f"{s}_forearm", f"{s}_hand"), "hip": ("torso", "pelvis", "skirt", f"{s}_thigh"),
        "knee": (f"{s}_thigh", f"{s}_shin", "skirt"), "ankle": (f"{s}_shin", f"{s}_shoe"),
        "eye": (f"{s}_eye",), "ear": (f"{s}_ear",), "big_toe": (f"{s}_shoe",), "small_toe": (f"{s}_shoe",),
        "heel": (f"{s}_shoe",)}.items()},
}


@dataclass
class RenderedFrame:
    """One frame: ``rgb`` uint8 (H, W, 3) RGB; ``labels`` uint8 (H, W) ATR indices; ``keypoints`` float32
    (25, 3) BODY_25 x, y (pixels) and confidence 1 (visible) or 0 (not drawn, occluded or outside the frame;
    x, y are still the true projected position)."""

    rgb: np.ndarray
    labels: np.ndarray
    keypoints: np.ndarray


def _xy(p) -> np.ndarray:
    return np.asarray(p[:2], np.float64)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else np.array([0.0, 1.0])


def _limb_colour(cov: Coverage, base, height_px: float, cloth: str | None, app: Appearance) -> np.ndarray:
    """Shaded colour over a limb's coverage: skin (``cloth`` None) or the top/bottom fabric."""
    if cloth == "top":
        col = top_colour(app, cov.u / height_px, cov.v / height_px)
    elif cloth == "bottom":
        col = bottom_colour(app, cov.u / height_px, cov.v / height_px)
    else:
        col = np.asarray(base, np.float32)
    return np.clip(col * shade(cov), 0, 255)


def _draw_arm(canvas: Canvas, pts, side: str, H: float, app: Appearance) -> None:
    shape = canvas.shape
    label = ATR["left_arm"] if side == "l" else ATR["right_arm"]
    sh, el, wr = (_xy(pts[f"{side}_{j}"]) for j in ("shoulder", "elbow", "wrist"))
    ru, rf, rh = (np.array(_RADII[k]) * H for k in ("upper_arm", "forearm", "hand"))
    hand_end = wr + _unit(wr - el) * 0.055 * H
    for p0, p1, (r0, r1), part in ((sh, el, ru, "upper_arm"), (el, wr, rf, "forearm"), (wr, hand_end, rh, "hand")):
        cov = capsule(p0, p1, r0, r1, shape)
        canvas.paint(cov, _limb_colour(cov, app.skin, H, None, app) if cov else 0, label, f"{side}_{part}")
    # Sleeves: fabric over the skin, a little looser than the arm.
    if app.sleeves in ("short", "long"):
        end = el + (sh - el) * 0.45 if app.sleeves == "short" else el
        r_end = ru[1] + 0.004 * H if app.sleeves == "long" else (ru[0] + ru[1]) / 2 + 0.005 * H
        cov = capsule(sh, end, ru[0] + 0.005 * H, r_end, shape)
        canvas.paint(cov, _limb_colour(cov, None, H, "top", app) if cov else 0, ATR["upper_clothes"],
                     f"{side}_upper_arm")
        if app.sleeves == "long":
            cuff = el + (wr - el) * 0.92
            cov = capsule(el, cuff, rf[0] + 0.004 * H, rf[1] + 0.004 * H, shape)
            canvas.paint(cov, _limb_colour(cov, None, H, "top", app) if cov else 0, ATR["upper_clothes"],
                         f"{side}_forearm")


def _draw_leg(canvas: Canvas, pts, side: str, H: float, app: Appearance) -> None:
    shape = canvas.shape
    skin_label = ATR["left_leg"] if side == "l" else ATR["right_leg"]
    hip, knee, ankle = (_xy(pts[f"{side}_{j}"]) for j in ("hip", "knee", "ankle"))
    rt, rs = np.array(_RADII["thigh"]) * H, np.array(_RADII["shin"]) * H
    pants = app.bottom == "pants"
    for p0, p1, (r0, r1), part in ((hip, knee, rt, "thigh"), (knee, ankle, rs, "shin")):
        cov = capsule(p0, p1, r0, r1, shape)
        canvas.paint(cov, _limb_colour(cov, app.skin, H, None, app) if cov else 0, skin_label, f"{side}_{part}")
    if pants:
        cov = capsule(hip, knee, rt[0] + 0.004 * H, rt[1] + 0.006 * H, shape)
        canvas.paint(cov, _limb_colour(cov, None, H, "bottom", app) if cov else 0, ATR["pants"], f"{side}_thigh")
        hem = knee + (ankle - knee) * app.pants_length
        r_hem = rs[0] + (rs[1] - rs[0]) * app.pants_length + 0.008 * H
        cov = capsule(knee, hem, rs[0] + 0.006 * H, r_hem, shape)
        canvas.paint(cov, _limb_colour(cov, None, H, "bottom", app) if cov else 0, ATR["pants"], f"{side}_shin")
    _draw_shoe(canvas, pts, side, H, app)


def _draw_shoe(canvas: Canvas, pts, side: str, H: float, app: Appearance) -> None:
    """The shoe as the convex hull of circles at the ankle, heel and toes (sitting on the sole points)."""
    label = ATR["left_shoe"] if side == "l" else ATR["right_shoe"]
    circles = [(_xy(pts[f"{side}_ankle"]), 0.026 * H)]
    for name, r in (("heel", 0.022), ("big_toe", 0.02), ("small_toe", 0.019)):
        c = _xy(pts[f"{side}_{name}"])
        circles.append((c - [0.0, r * H * 0.9], r * H))
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], 1)
    hull = cv2.convexHull(np.concatenate([c + r * ring for c, r in circles]).astype(np.float32))[:, 0]
    ankle = circles[0][0]
    sole_y = max(c[1] + r for c, r in circles[1:])
    cov = polygon(hull, ankle, (0.0, 1.0), 0.03 * H, canvas.shape)
    if cov is None:
        return
    y0, y1, x0, x1 = cov.box
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    # Darker sole strip along the bottom of the shoe, lighter upper.
    sole = np.clip((ys - (sole_y - 0.012 * H)) / 1.5, 0, 1)
    col = np.asarray(app.shoes, np.float32) * shade(cov)
    col = col * (1 - 0.55 * sole[..., None]) + 25 * sole[..., None]
    canvas.paint(cov, np.clip(col, 0, 255), label, f"{side}_shoe")


def _torso_frame(pts, skel: Skeleton3D):
    """Neck point, unit axis down the torso, unit across vector (image right) and the width factor from
    turning: an elliptical torso cross-section (depth 0.6 of the width) seen from angle ``yaw``."""
    neck, mid = _xy(pts["neck"]), _xy(pts["mid_hip"])
    down = _unit(mid - neck)
    across = np.array([down[1], -down[0]])     # image right when the torso is upright
    width = float(np.sqrt(np.cos(skel.yaw) ** 2 + (0.6 * np.sin(skel.yaw)) ** 2))
    return neck, down, across, width


# Torso outline at stations down the torso: (v, half-width) in units of height, v from the neck.
_TORSO_PROFILE = ((0.0, 0.118), (0.05, 0.125), (0.10, 0.112), (0.16, 0.100), (0.205, 0.088), (0.26, 0.098),
                  (0.30, 0.100))


def _draw_torso(canvas: Canvas, pts, skel: Skeleton3D, H: float, app: Appearance) -> None:
    neck, down, across, width = _torso_frame(pts, skel)
    torso_len = np.linalg.norm(_xy(pts["mid_hip"]) - neck) / PROPORTIONS["torso"] / H  # < 1 when bending
    # Shift the outline a little towards the side the chest faces, like a turned barrel.
    turn_shift = -np.sin(skel.yaw) * 0.012 * H * across
    right = [neck + turn_shift + down * v * H * torso_len + across * w * H * width for v, w in _TORSO_PROFILE]
    left = [neck + turn_shift + down * v * H * torso_len - across * w * H * width for v, w in _TORSO_PROFILE]
    collar = [neck + across * 0.04 * H * width - down * 0.012 * H, neck - across * 0.04 * H * width - down * 0.012 * H]
    # Rounded shoulder tops sit slightly above the neck point.
    top_r = neck + turn_shift + across * 0.10 * H * width - down * 0.008 * H
    top_l = neck + turn_shift - across * 0.10 * H * width - down * 0.008 * H
    outline = np.array([collar[0], top_r, *right, *left[::-1], top_l, collar[1]])
    cov = polygon(outline, neck, down, 0.12 * H * width, canvas.shape)
    if cov is None:
        return
    u, v = cov.u / (H * width), cov.v / H
    col = top_colour(app, u, v) * shade(cov)
    canvas.paint(cov, np.clip(col, 0, 255), ATR["upper_clothes"], "torso")
    # Neckline: a skin-coloured notch so the collar reads as clothing.
    notch = ellipse(neck - down * 0.004 * H, 0.028 * H * width, 0.022 * H, across, canvas.shape)
    if notch is not None:
        notch.alpha *= (notch.v > 0)   # lower half only: a U-shaped neckline
        canvas.paint(notch, np.clip(np.asarray(app.skin, np.float32) * 0.85 * shade(notch), 0, 255),
                     ATR["face"], "neck")


def _draw_neck(canvas: Canvas, pts, H: float, app: Appearance) -> None:
    neck, hc = _xy(pts["neck"]), _xy(pts["head_centre"])
    top = neck + (hc - neck) * 0.7
    cov = capsule(neck, top, *(np.array(_RADII["neck"]) * H), canvas.shape)
    if cov is not None:
        # Shadow under the chin: the neck is darker than the face.
        canvas.paint(cov, np.clip(np.asarray(app.skin, np.float32) * 0.82 * shade(cov), 0, 255), ATR["face"],
                     "neck")


def _draw_pelvis(canvas: Canvas, pts, skel: Skeleton3D, H: float, app: Appearance) -> None:
    """Pants: a block joining the waist to both thighs (the legs' capsules cover the rest)."""
    neck, down, across, width = _torso_frame(pts, skel)
    mid = _xy(pts["mid_hip"])
    lh, rh = _xy(pts["l_hip"]), _xy(pts["r_hip"])
    lk, rk = _xy(pts["l_knee"]), _xy(pts["r_knee"])
    waist = mid - down * 0.09 * H
    outline = np.array([
        waist + across * 0.09 * H * width, lh + across * 0.05 * H * width, lh + (lk - lh) * 0.25,
        mid + down * 0.055 * H, rh + (rk - rh) * 0.25, rh - across * 0.05 * H * width,
        waist - across * 0.09 * H * width])
    cov = polygon(outline, waist, down, 0.1 * H * width, canvas.shape)
    if cov is None:
        return
    col = bottom_colour(app, cov.u / H, cov.v / H) * shade(cov)
    canvas.paint(cov, np.clip(col, 0, 255), ATR["pants"], "pelvis")


def _draw_skirt(canvas: Canvas, pts, skel: Skeleton3D, H: float, app: Appearance) -> None:
    """A flared skirt from the waist to a hem between hips and knees, following the spread of the legs."""
    neck, down, across, width = _torso_frame(pts, skel)
    mid = _xy(pts["mid_hip"])
    lh, rh = _xy(pts["l_hip"]), _xy(pts["r_hip"])
    lk, rk = _xy(pts["l_knee"]), _xy(pts["r_knee"])
    f = app.skirt_length
    hem_l, hem_r = lh + (lk - lh) * f, rh + (rk - rh) * f
    # Image-side order: the person's left hip is on the image right when facing the camera.
    side_l = 1.0 if (hem_l - hem_r) @ across >= 0 else -1.0
    flare = 0.07 * H
    waist = mid - down * 0.10 * H
    hem_mid = (hem_l + hem_r) / 2 + down * 0.015 * H
    outline = np.array([
        waist + across * 0.088 * H * width,
        mid + across * 0.11 * H * width,
        hem_l + across * side_l * flare * max(width, 0.7) + down * 0.005 * H,
        hem_mid,
        hem_r - across * side_l * flare * max(width, 0.7) + down * 0.005 * H,
        mid - across * 0.11 * H * width,
        waist - across * 0.088 * H * width])
    cov = polygon(outline, waist, down, 0.14 * H * width, canvas.shape)
    if cov is None:
        return
    col = bottom_colour(app, cov.u / H, cov.v / H) * shade(cov)
    canvas.paint(cov, np.clip(col, 0, 255), ATR["skirt"], "skirt")


def _head_frame(skel: Skeleton3D, pts):
    """Head centre (px), the head's image-plane right and down unit vectors, and its forward vector (3-D)."""
    hc = _xy(pts["head_centre"])
    down = -_unit(skel.head_axes[1][:2])
    right = np.array([down[1], -down[0]])
    return hc, right, down, skel.head_axes[2]


def _head_point(skel: Skeleton3D, pts, H: float, r: float, up: float, fwd: float) -> np.ndarray:
    """Pixel (x, y) and depth of a point on the head given in head units (half-width) right/up/forward."""
    hw = PROPORTIONS["head_half_width"] * H
    a = skel.head_axes
    p = np.asarray(pts["head_centre"], np.float64) + hw * (r * a[0] + up * a[1] + fwd * a[2])
    return p


def _draw_hair_back(canvas: Canvas, pts, skel: Skeleton3D, H: float, app: Appearance) -> None:
    if app.hair_style != "long":
        return
    hc, right, down, fwd = _head_frame(skel, pts)
    a, b = PROPORTIONS["head_half_width"] * H, PROPORTIONS["head_half_height"] * H
    centre = hc + down * 0.55 * b - right * fwd[0] * 0.35 * a
    cov = ellipse(centre, 1.2 * a, 1.45 * b, right, canvas.shape)
    if cov is not None:
        col = np.asarray(app.hair, np.float32) * (0.75 + 0.25 * shade(cov))
        canvas.paint(cov, np.clip(col, 0, 255), ATR["hair"], "hair")


def _draw_head(canvas: Canvas, pts, skel: Skeleton3D, H: float, app: Appearance) -> dict[str, bool]:
    """Skull (hair), ears, face with eyes, brows, nose and mouth. Returns which of eyes/ears were drawn."""
    shape = canvas.shape
    hc, right, down, fwd = _head_frame(skel, pts)
    a, b = PROPORTIONS["head_half_width"] * H, PROPORTIONS["head_half_height"] * H
    fx, fz = float(fwd[0]), float(fwd[2])        # facing: sideways on screen, towards the camera
    hair = np.asarray(app.hair, np.float32)
    skin = np.asarray(app.skin, np.float32)
    drawn: dict[str, bool] = {}

    ears_front = []
    for side in SIDES:
        ear = np.asarray(pts[f"{side}_ear"], np.float64)
        rel_z = (ear[2] - pts["head_centre"][2]) / a
        drawn[f"{side}_ear"] = rel_z > -0.45
        if rel_z > 0.3:
            ears_front.append(side)           # the near ear in a turned head sits over the hair
        elif drawn[f"{side}_ear"]:
            cov = ellipse(ear[:2], 0.2 * a, 0.32 * b, right, shape)
            canvas.paint(cov, np.clip(skin * 0.9 * shade(cov), 0, 255) if cov else 0, ATR["face"], f"{side}_ear")

    skull = ellipse(hc - down * 0.06 * b, 1.1 * a, 1.06 * b, right, shape)
    if skull is not None:
        canvas.paint(skull, np.clip(hair * (0.7 + 0.35 * shade(skull)), 0, 255), ATR["hair"], "hair")

    face = ellipse(hc + down * 0.05 * b, a, 0.98 * b, right, shape)
    if face is not None:
        lx, ly = face.u / a, face.v / b
        centre = 0.55 * fx
        half = 0.62 + 0.38 * max(fz, 0.0)
        hairline = -0.35 + 0.25 * lx ** 2 + (0.25 if app.hair_style == "long" else 0.0) * np.abs(lx) ** 3
        face.alpha = face.alpha * np.clip((ly - hairline) * b + 0.5, 0, 1) \
            * np.clip((half - np.abs(lx - centre)) * a + 0.5, 0, 1)
        canvas.paint(face, np.clip(skin * shade(face), 0, 255), ATR["face"], "face")

    for side in ears_front:
        ear = np.asarray(pts[f"{side}_ear"], np.float64)
        cov = ellipse(ear[:2], 0.18 * a, 0.3 * b, right, shape)
        canvas.paint(cov, np.clip(skin * 0.92 * shade(cov), 0, 255) if cov else 0, ATR["face"], f"{side}_ear")

    if fz < 0.1:           # facing away: no features
        for side in SIDES:
            drawn[f"{side}_eye"] = False
        return drawn
    dark = np.array([35.0, 25.0, 25.0])
    for side in SIDES:
        eye = np.asarray(pts[f"{side}_eye"], np.float64)
        rel_z = (eye[2] - pts["head_centre"][2]) / a
        drawn[f"{side}_eye"] = rel_z > 0.35
        if not drawn[f"{side}_eye"]:
            continue
        squash = float(np.clip(rel_z, 0.35, 1.0))
        white = ellipse(eye[:2], 0.2 * a * squash, 0.11 * b, right, shape)
        canvas.paint(white, np.array([245.0, 245.0, 240.0]), ATR["face"], f"{side}_eye")
        iris = ellipse(eye[:2] + right * fx * 0.06 * a, 0.1 * a * squash, 0.1 * b, right, shape)
        canvas.paint(iris, dark, ATR["face"], f"{side}_eye")
        brow0 = _head_point(skel, pts, H, (1 if side == "l" else -1) * 0.2, 0.33, 0.9)[:2]
        brow1 = _head_point(skel, pts, H, (1 if side == "l" else -1) * 0.62, 0.3, 0.75)[:2]
        cov = capsule(brow0, brow1, 0.05 * a, 0.04 * a, shape)
        canvas.paint(cov, hair * 0.8, ATR["face"], "face")
    nose = np.asarray(pts["nose"], np.float64)[:2]
    bridge = _head_point(skel, pts, H, 0.0, 0.05, 1.0)[:2]
    cov = capsule(bridge, nose, 0.05 * a, 0.09 * a, shape)
    canvas.paint(cov, np.clip(skin * 0.78, 0, 255), ATR["face"], "face", opacity=0.8)
    mouth_c = _head_point(skel, pts, H, 0.0, -0.72, 0.85)[:2]
    mouth_r = _head_point(skel, pts, H, 0.3, -0.7, 0.75)[:2]
    mouth_l = _head_point(skel, pts, H, -0.3, -0.7, 0.75)[:2]
    lip = np.array([170.0, 70.0, 70.0])
    for end in (mouth_r, mouth_l):
        cov = capsule(mouth_c, end, 0.07 * a, 0.05 * a, shape)
        canvas.paint(cov, lip, ATR["face"], "face")
    return drawn


def figure_extent(skel: Skeleton3D) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) of everything drawn, in units of height relative to the floor point below
    mid-hip (y down, so ymin is negative, near -1 for a standing person)."""
    xy = np.array([p[:2] for p in skel.points.values()])
    head = skel.points["head_centre"]
    top = head[1] - PROPORTIONS["head_half_height"] * 1.15
    return (float(xy[:, 0].min() - 0.06), float(xy[:, 0].max() + 0.06), float(min(top, xy[:, 1].min() - 0.06)),
            float(xy[:, 1].max() + 0.005))


def render_person(background: np.ndarray, skel: Skeleton3D, origin: tuple[float, float], height_px: float,
                  app: Appearance) -> RenderedFrame:
    """Draw the person posed by ``skel`` with the floor point below mid-hip at pixel ``origin`` and standing
    height ``height_px``, over ``background`` (float32 RGB H x W x 3, unchanged)."""
    H = float(height_px)
    canvas = Canvas(background)
    pts = project(skel, origin, H)

    # Contact shadow on the floor, under the feet (background label is kept).
    feet = np.array([_xy(pts[f"{s}_{j}"]) for s in SIDES for j in ("heel", "big_toe", "small_toe")])
    span = feet[:, 0].max() - feet[:, 0].min()
    shadow = ellipse((feet[:, 0].mean(), origin[1] - 0.004 * H), span / 2 + 0.06 * H, 0.022 * H, (1.0, 0.0),
                     canvas.shape)
    if shadow is not None:
        shadow.alpha = np.clip(shadow.alpha * (1 - (shadow.u / (span / 2 + 0.06 * H)) ** 2), 0, 1)
        canvas.paint(shadow, np.zeros(3), None, None, opacity=0.35)

    # Back-to-front draw order by depth (z towards the camera); biases keep arms over the torso and the legs
    # under it when everything is at the same depth, and a skirt always over the legs it covers.
    z = {name: p[2] for name, p in pts.items()}
    groups: list[tuple[float, int, Callable[[], object]]] = [
        (-1e9, 0, lambda: _draw_hair_back(canvas, pts, skel, H, app))]
    leg_depth = {}
    for i, side in enumerate(SIDES):
        d = np.mean([z[f"{side}_{j}"] for j in ("hip", "knee", "ankle")]) - 0.03 * H
        leg_depth[side] = d
        groups.append((d, 1 + i, lambda side=side: _draw_leg(canvas, pts, side, H, app)))
        d = np.mean([z[f"{side}_{j}"] for j in ("shoulder", "elbow", "wrist")]) + 0.02 * H
        groups.append((d, 3 + i, lambda side=side: _draw_arm(canvas, pts, side, H, app)))
    if app.bottom == "pants":
        groups.append((-0.02 * H, 5, lambda: _draw_pelvis(canvas, pts, skel, H, app)))
    else:
        groups.append((max(max(leg_depth.values()) + 1e-3, -0.02 * H), 5,
                       lambda: _draw_skirt(canvas, pts, skel, H, app)))
    groups.append((0.0, 6, lambda: (_draw_neck(canvas, pts, H, app), _draw_torso(canvas, pts, skel, H, app))))
    head_state: dict[str, bool] = {}
    groups.append((0.005 * H, 7, lambda: head_state.update(_draw_head(canvas, pts, skel, H, app))))
    for _, _, draw in sorted(groups, key=lambda g: (g[0], g[1])):
        draw()

    keypoints = body25_array(pts)
    keypoints[:, 2] = _visibility(canvas, pts, head_state)
    rgb = np.clip(np.round(canvas.rgb), 0, 255).astype(np.uint8)
    return RenderedFrame(rgb=rgb, labels=canvas.labels, keypoints=keypoints)


def _visibility(canvas: Canvas, pts, head_state: dict[str, bool], window: int = 2) -> np.ndarray:
    """1.0 for each BODY_25 joint inside the frame with one of its own parts on top within ``window`` px,
    else 0.0 (eyes and ears also need to have been drawn at all)."""
    h, w = canvas.shape
    conf = np.zeros(len(BODY25_JOINTS), np.float32)
    for i, name in enumerate(BODY25_JOINTS):
        if name in head_state and not head_state[name]:
            continue
        x, y = pts[name][:2]
        if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
            continue
        xi, yi = int(round(x)), int(round(y))
        patch = canvas.parts[max(yi - window, 0): yi + window + 1, max(xi - window, 0): xi + window + 1]
        is_owner = np.zeros(256, bool)
        is_owner[[canvas.part_names.index(p) for p in _JOINT_OWNERS[name] if p in canvas.part_names]] = True
        conf[i] = float(is_owner[patch].any())
    return conf
