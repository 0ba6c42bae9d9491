"""Offline human parser: ATR labels from MediaPipe's person mask, BODY_25 keypoints, skin colour and geometry.

This is the parser that runs when SCHP's pretrained weights are absent (``pipeline/parsing/schp_parser.py`` is the
real network). It is **not** a learned parser and does not pretend to be one: every label comes from a rule
below, and its outputs are recorded under ``OFFLINE_PARSER_NAME`` so nobody mistakes them for SCHP's.

Signals:

* person pixels = MediaPipe segmentation mask > 0.5; everything outside is ``background``;
* BODY_25 keypoints (joints with confidence >= ``CONF_MIN`` only);
* a skin model: the median and spread (covariance, floored and capped) of CIELAB chroma (a*, b*) and the
  median lightness in a small disk around the nose (the face centre); a pixel is skin when its chroma is
  within a Mahalanobis distance of 3 of the sample, its lightness within a shadow/highlight band of the
  sample's, and it is warm (a* and b* above neutral grey: grey or bluish fabric is never skin). Without a confident nose (back view) a generic YCrCb skin box (Chai & Ngan 1999:
  Cr 133-173, Cb 77-127) is used instead;
* on the mask's 2-pixel rim (mixed person/background colours) skin is decided by a majority vote of the
  nearby interior pixels;
* garment colours: median CIELAB of non-skin pixels in the chest and in the thighs.

Steps (``parse_offline``):

1. **Body parts by nearest skeleton.** Each person pixel goes to the body part whose skeleton is nearest
   (a Voronoi partition of the mask by distance transforms): head (a disk around the face keypoints, radius
   from the ear distance or the torso length), torso (filled polygon shoulders → hips), left/right arm
   (shoulder → elbow → wrist → hand, the hand extrapolated 40% of the forearm past the wrist), left/right leg
   (hip → knee → ankle), left/right foot (ankle, heel, big and small toe). Within a capsule around an arm
   (radius ~ a forearm's half width) the arm wins over the torso, because an arm seen over the torso is in
   front of it. Torso pixels above the shoulder line go to the head part (the neck).
2. **Head**: skin → ``face`` (ATR has no neck class; the visible neck goes with the face), non-skin →
   ``hair``; non-skin head pixels well below the chin (more than 1.1 head radii below the head centre) are a
   collar → ``upper_clothes``. Without a visible face the whole head is ``hair`` (back of the head).
3. **Arms**: skin → ``left_arm`` / ``right_arm`` (bare arms and hands), non-skin → ``upper_clothes`` (ATR
   labels sleeves as the garment).
4. **Torso**: ``upper_clothes``, except that when the chest and thigh garments differ in colour (CIELAB
   distance > ``GARMENT_SPLIT_DE``), non-skin pixels in the lower half of the torso that are nearer the
   thigh colour become the bottom garment (the waistband usually sits above MediaPipe's hip joints).
5. **Legs**: skin → ``left_leg`` / ``right_leg``; non-skin → the bottom garment, ``pants`` or ``skirt``.
   ``skirt`` needs a garment that covers the thighs (< 50% skin) and stops at the knees (> 50% skin on the
   shins), and fabric bridging the legs below the crotch: at least ``SKIRT_FILL`` of the sample points
   midway between the thigh axes that are at least a leg's half width from both legs (where shorts would
   show a gap; half width measured on the mask along the shins, >= 0.15 torso lengths) must be non-skin
   person pixels. With too few such points (legs together) it is a skirt. Everything else is ``pants``.
   So shorts with the legs together read as a skirt, and ankle-length skirts read as pants (with covered
   shins, bent or overlapping trouser legs fool the between-legs test; both merge into "bottom" anyway).
6. **Dress**: when the bottom garment is a skirt whose median colour matches that of the pixels labelled
   ``upper_clothes`` (CIELAB distance < ``DRESS_DE``), both are relabelled ``dress``.
7. **Feet**: non-skin foot-part pixels lower than ``FOOT_ABOVE_ANKLE`` of a shin above the ankle →
   ``left_shoe`` / ``right_shoe``; skin there → the leg label (bare feet); foot-part pixels higher up follow
   the leg rule.

Never produced: ``hat``, ``sunglasses``, ``belt``, ``bag``, ``scarf`` (no signal for them). A frame whose
keypoints have no confident joint is returned as all ``background`` (there is nothing to hang parts on).
Known weaknesses: long hair over the shoulders becomes ``upper_clothes``; hand-held skin-coloured objects
(e.g. an orange ball) inside the mask read as ``arm``; skin-coloured clothes read as skin.
"""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.core.labels import ATR, BODY25

OFFLINE_PARSER_NAME = "offline-mediapipe-geometry-v1"

CONF_MIN = 0.3            # keypoint confidence needed to use a joint
MASK_THRESHOLD = 0.5      # person = segmentation probability above this
SKIN_MAHALANOBIS = 3.0    # skin if the (a*, b*) Mahalanobis distance to the face sample is below this
SKIN_MIN_SIGMA = 3.0      # floor on the chroma spread of the face sample (few, noisy pixels)
SKIN_MAX_SIGMA = 6.0      # cap on it, so hair or blur in the sample cannot make "skin" swallow everything
SKIN_WARM_A = 4.0         # skin is always warm: a* at least this far above neutral (128) ...
SKIN_WARM_B = 1.0         # ... and b* above neutral (grey or bluish fabric is never skin)
SKIN_L_BELOW = 60.0       # skin may be this much darker (L*, 0..255 scale) than the face median (shadows)
SKIN_L_ABOVE = 45.0       # ... and this much brighter (highlights)
GARMENT_SPLIT_DE = 25.0   # chest vs thigh garment colour distance above which the torso is split by colour
DRESS_DE = 20.0           # skirt vs chest garment colour distance below which they are one dress
FOOT_ABOVE_ANKLE = 0.12   # foot pixels count as shoe up to this fraction of the shin length above the ankle
SKIRT_FILL = 0.8          # fraction of between-leg samples filled with fabric for a skirt

# Body parts of step 1 (internal), in priority order for exact ties.
_PARTS = ("head", "torso", "l_arm", "r_arm", "l_leg", "r_leg", "l_foot", "r_foot")


def _joint(kps: np.ndarray, name: str) -> np.ndarray | None:
    j = kps[BODY25[name]]
    return j[:2].astype(np.float64) if j[2] >= CONF_MIN else None


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)


def _body_scale(kps: np.ndarray, person: np.ndarray) -> float:
    """Torso length in pixels (neck → mid-hip), falling back on a third of the mask's height."""
    neck, hip = _joint(kps, "neck"), _joint(kps, "mid_hip")
    if neck is not None and hip is not None:
        length = float(np.linalg.norm(neck - hip))
        if length > 2:
            return length
    rows = np.flatnonzero(person.any(axis=1))
    return max((rows[-1] - rows[0] + 1) / 3.0, 4.0) if rows.size else 4.0


def _head_geometry(kps: np.ndarray, scale: float) -> tuple[np.ndarray | None, float, bool]:
    """(head centre, head radius, face visible). Centre None when no head keypoint is confident."""
    face_pts = [p for p in (_joint(kps, n) for n in ("nose", "l_eye", "r_eye", "l_ear", "r_ear")) if p is not None]
    radius = 0.24 * scale
    l_ear, r_ear = _joint(kps, "l_ear"), _joint(kps, "r_ear")
    if l_ear is not None and r_ear is not None:
        radius = max(radius, 0.6 * float(np.linalg.norm(l_ear - r_ear)))
    face_visible = _joint(kps, "nose") is not None
    if not face_pts:
        return None, radius, face_visible
    centre = np.mean(face_pts, axis=0) - np.array([0.0, 0.15 * radius])  # eyes/ears sit below the head centre
    return centre, radius, face_visible


class _SkinModel:
    """Skin test from the face sample (or a generic YCrCb box when there is no usable face)."""

    def __init__(self, rgb: np.ndarray, lab: np.ndarray, person: np.ndarray, kps: np.ndarray, radius: float):
        self.generic = True
        nose = _joint(kps, "nose")
        if nose is None:
            return
        # The disk tested on its bounding window only (the same pixels, in the same row-major order, as a
        # whole-frame test: a full-frame grid per frame cost ~1 ms).
        r = max(0.4 * radius, 2.0)
        y0, y1 = max(int(np.floor(nose[1] - r)), 0), min(int(np.ceil(nose[1] + r)) + 1, person.shape[0])
        x0, x1 = max(int(np.floor(nose[0] - r)), 0), min(int(np.ceil(nose[0] + r)) + 1, person.shape[1])
        if y0 >= y1 or x0 >= x1:
            return
        yy = np.arange(y0, y1)[:, None]
        xx = np.arange(x0, x1)[None, :]
        disk = ((xx - nose[0]) ** 2 + (yy - nose[1]) ** 2 <= r ** 2) & person[y0:y1, x0:x1]
        sample = lab[y0:y1, x0:x1][disk]
        if len(sample) < 6:
            return
        self.generic = False
        self.l_median = float(np.median(sample[:, 0]))
        chroma = sample[:, 1:]
        self.mean = np.median(chroma, axis=0)
        cov = np.cov(chroma.T) if len(chroma) > 2 else np.zeros((2, 2))
        cov = cov + np.eye(2) * SKIN_MIN_SIGMA ** 2
        # 2x2 eigenvalue and inverse in closed form: LAPACK's calls cost ~5 ms a frame here (thread wake-ups
        # on a busy machine), more than the whole skin test.
        (a, b), (_, d) = cov
        largest = float(0.5 * (a + d) + np.sqrt(0.25 * (a - d) ** 2 + b * b))
        if largest > SKIN_MAX_SIGMA ** 2:
            cov = cov * (SKIN_MAX_SIGMA ** 2 / largest)
        (a, b), (c, d) = cov
        self.inv_cov = np.array([[d, -b], [-c, a]]) / (a * d - b * c)

    def __call__(self, rgb: np.ndarray, lab: np.ndarray, where: np.ndarray) -> np.ndarray:
        """HxW bool: the pixels of ``where`` (HxW bool) that look like this person's skin; False elsewhere."""
        if self.generic:
            ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
            cr, cb = ycrcb[..., 1], ycrcb[..., 2]
            return (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127) & where
        # Only the person's pixels (a quarter of the frame or so) are tested: the same per-pixel arithmetic as
        # over the whole frame, where the Mahalanobis einsum alone cost ~1.3 ms a frame.
        sample = lab[where]
        d = sample[:, 1:] - self.mean
        maha = np.einsum("...i,ij,...j->...", d, self.inv_cov, d)
        light = (sample[:, 0] >= self.l_median - SKIN_L_BELOW) & (sample[:, 0] <= self.l_median + SKIN_L_ABOVE)
        warm = (sample[:, 1] >= 128 + SKIN_WARM_A) & (sample[:, 2] >= 128 + SKIN_WARM_B)
        skin = np.zeros(where.shape, dtype=bool)
        skin[where] = (maha <= SKIN_MAHALANOBIS ** 2) & light & warm
        return skin


def _settle_rim(skin: np.ndarray, person: np.ndarray, rim: int = 2) -> np.ndarray:
    """Decide skin on the mask's outer ``rim`` pixels by the majority of nearby interior pixels.

    Rim pixels mix the person with the background, so their own colour says little (a bare arm would get a
    one-pixel "sleeve" outline otherwise).
    """
    interior = cv2.erode(person.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=rim).astype(bool)
    size = (2 * rim + 3, 2 * rim + 3)
    skin_votes = cv2.boxFilter((skin & interior).astype(np.float32), -1, size, normalize=False)
    votes = cv2.boxFilter(interior.astype(np.float32), -1, size, normalize=False)
    rim_px = person & ~interior
    settled = skin.copy()
    decided = rim_px & (votes > 0)
    settled[decided] = skin_votes[decided] > 0.5 * votes[decided]
    return settled


def _part_skeletons(kps: np.ndarray, shape: tuple[int, int], head_centre, head_radius) -> dict[str, np.ndarray]:
    """uint8 HxW masks (255 on the part's skeleton) for the parts that have enough confident joints."""
    def canvas() -> np.ndarray:
        return np.zeros(shape, dtype=np.uint8)

    def chain(names: list[str]) -> np.ndarray | None:
        pts = [_joint(kps, n) for n in names]
        img, drawn = canvas(), False
        for a, b in zip(pts[:-1], pts[1:]):
            if a is not None and b is not None:
                cv2.line(img, _pt(a), _pt(b), 255, 1)
                drawn = True
        return img if drawn else None

    parts: dict[str, np.ndarray] = {}
    if head_centre is not None:
        img = canvas()
        cv2.circle(img, _pt(head_centre), max(int(round(0.7 * head_radius)), 1), 255, -1)
        parts["head"] = img
    corners = [_joint(kps, n) for n in ("r_shoulder", "l_shoulder", "l_hip", "r_hip")]
    if all(c is not None for c in corners):
        img = canvas()
        cv2.fillPoly(img, [np.round(np.array(corners)).astype(np.int32)], 255)
        parts["torso"] = img
    else:
        spine = chain(["neck", "mid_hip"])
        if spine is not None:
            parts["torso"] = spine
    for side in ("l", "r"):
        arm = chain([f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist"])
        elbow, wrist = _joint(kps, f"{side}_elbow"), _joint(kps, f"{side}_wrist")
        if arm is not None and elbow is not None and wrist is not None:
            cv2.line(arm, _pt(wrist), _pt(wrist + 0.4 * (wrist - elbow)), 255, 1)  # the hand
        if arm is not None:
            parts[f"{side}_arm"] = arm
        leg = chain([f"{side}_hip", f"{side}_knee", f"{side}_ankle"])
        if leg is not None:
            parts[f"{side}_leg"] = leg
        foot_names = [f"{side}_ankle", f"{side}_heel", f"{side}_big_toe", f"{side}_small_toe", f"{side}_ankle"]
        foot = chain(foot_names)
        if foot is not None:
            parts[f"{side}_foot"] = foot
    return parts


def _between_legs_fill(person_fabric: np.ndarray, kps: np.ndarray, top: float, bottom: float,
                       leg_radius: float) -> float | None:
    """Fraction of sample points midway between the two legs (from ``top`` to ``bottom`` of the hip → knee →
    ankle path) that lie on fabric; None when too few points are clear of both legs to tell.

    A sample counts only if it is at least ``leg_radius`` from both leg axes: only there would trouser legs
    leave a visible gap (legs together, crossed or overlapping in the image give no usable samples).
    """
    paths = []
    for side in ("l", "r"):
        pts = [_joint(kps, f"{side}_{n}") for n in ("hip", "knee", "ankle")]
        if any(p is None for p in pts):
            return None
        paths.append(pts)
    # all 36 sample points at once (a Python loop of point-to-segment distances cost ~2 ms a frame)
    pl, pr = (np.array([_along(p, s) for s in np.linspace(top, bottom, 12)]) for p in paths)
    points = (pl[:, None] + np.array([0.4, 0.5, 0.6])[None, :, None] * (pr - pl)[:, None]).reshape(-1, 2)
    clear = np.minimum(*(_polyline_distances(points, p) for p in paths)) >= leg_radius
    height, width = person_fabric.shape
    samples, filled = 0, 0
    for point in points[clear]:
        x, y = _pt(point)
        if 0 <= x < width and 0 <= y < height:
            samples += 1
            filled += bool(person_fabric[y, x])
    return filled / samples if samples >= 6 else None


def _leg_radius(person: np.ndarray, kps: np.ndarray, scale: float) -> float:
    """Half width of a lower leg in pixels: 1.2 x the median distance-to-background of the person mask on
    the shin axes (knee → ankle), at least 0.15 torso lengths. Where legs overlap in the image the mask is
    wider there, which makes the between-legs test more cautious, as it should be."""
    inside = cv2.distanceTransform(person.astype(np.uint8), cv2.DIST_L2, 3)
    values = []
    for side in ("l", "r"):
        knee, ankle = _joint(kps, f"{side}_knee"), _joint(kps, f"{side}_ankle")
        if knee is None or ankle is None:
            continue
        for s in np.linspace(0.2, 0.8, 7):
            x, y = _pt(knee + s * (ankle - knee))
            if 0 <= y < person.shape[0] and 0 <= x < person.shape[1]:
                values.append(float(inside[y, x]))
    return max(0.15 * scale, 1.2 * float(np.median(values))) if values else 0.15 * scale


def _polyline_distances(points: np.ndarray, path: list[np.ndarray]) -> np.ndarray:
    """(N,) Euclidean distances from ``points`` (N, 2) to the polyline through ``path``."""
    best = np.full(len(points), np.inf)
    for a, b in zip(path[:-1], path[1:]):
        ab = b - a
        t = np.clip((points - a) @ ab / max(float(np.dot(ab, ab)), 1e-9), 0.0, 1.0)
        best = np.minimum(best, np.sqrt(((points - (a + t[:, None] * ab)) ** 2).sum(axis=1)))
    return best


def _along(path: list[np.ndarray], s: float) -> np.ndarray:
    """Point at fraction ``s`` (0 = hip, 0.5 = knee, 1 = ankle) along a hip → knee → ankle path."""
    if s <= 0.5:
        return path[0] + (s / 0.5) * (path[1] - path[0])
    return path[1] + ((s - 0.5) / 0.5) * (path[2] - path[1])


def _leg_skin_profile(skin: np.ndarray, person: np.ndarray, kps: np.ndarray, radius: float) -> tuple[float, float] | None:
    """(fraction of skin on the thighs, on the shins) over both legs' person pixels near the leg axes."""
    fractions = {"thigh": [0, 0], "shin": [0, 0]}
    for side in ("l", "r"):
        for part, (a, b) in (("thigh", ("hip", "knee")), ("shin", ("knee", "ankle"))):
            pa, pb = _joint(kps, f"{side}_{a}"), _joint(kps, f"{side}_{b}")
            if pa is None or pb is None:
                continue
            img = np.zeros(person.shape, np.uint8)
            # Shrink the segment a little so hip/knee/ankle surroundings (waistband, shoes) do not dominate.
            cv2.line(img, _pt(pa + 0.15 * (pb - pa)), _pt(pa + 0.85 * (pb - pa)), 1, max(int(radius), 1))
            sel = (img > 0) & person
            fractions[part][0] += int((sel & skin).sum())
            fractions[part][1] += int(sel.sum())
    if fractions["thigh"][1] == 0 or fractions["shin"][1] == 0:
        return None
    return fractions["thigh"][0] / fractions["thigh"][1], fractions["shin"][0] / fractions["shin"][1]


def _mean_colour(lab: np.ndarray, where: np.ndarray) -> np.ndarray | None:
    # Median, so stray hair or shadow in the sample does not shift a garment's colour.
    return np.median(lab[where], axis=0) if where.sum() >= 10 else None


def parse_offline(rgb: np.ndarray, keypoints: np.ndarray, person_mask: np.ndarray) -> np.ndarray:
    """Parse one frame into ATR labels (see the module docstring for every rule).

    ``rgb``: HxWx3 uint8 RGB. ``keypoints``: (25, 3) BODY_25 (x, y in pixels of ``rgb``, conf in [0, 1]).
    ``person_mask``: HxW float in [0, 1] (MediaPipe's segmentation). Returns HxW uint8 ATR labels
    (``labels.ATR_LABELS`` order, values 0..17); pixels outside the mask (<= 0.5) are 0 = background.
    """
    rgb, kps, mask = _checked_inputs(rgb, keypoints, person_mask)
    shape = rgb.shape[:2]
    labels = np.zeros(shape, dtype=np.uint8)
    person = mask > MASK_THRESHOLD
    if not person.any() or not (kps[:, 2] >= CONF_MIN).any():
        return labels

    lab = _lab(rgb)
    scale = _body_scale(kps, person)
    head_centre, head_radius, face_visible = _head_geometry(kps, scale)
    skin = _settle_rim(_SkinModel(rgb, lab, person, kps, head_radius)(rgb, lab, person), person)
    # row coordinates as one column: comparisons broadcast it to HxW, as the full grid gave (same float32 values)
    yy = np.arange(shape[0], dtype=np.float32)[:, None]
    part_of, names = _partition(kps, person, head_centre, head_radius, scale)                  # rule 1
    top_colour, bottom_colour, torso_mid_y = _garment_colours(lab, kps, part_of, person, skin, yy, scale)
    bottom_label = _bottom_kind(kps, person, skin, scale)                                     # rule 5
    # 2-4, 7: labels per part.
    labels[part_of["torso"]] = ATR["upper_clothes"]
    if (top_colour is not None and bottom_colour is not None and torso_mid_y is not None
            and np.linalg.norm(top_colour - bottom_colour) > GARMENT_SPLIT_DE):
        lower = part_of["torso"] & ~skin & (yy >= torso_mid_y)
        labels[_nearer(lab, lower, bottom_colour, top_colour)] = bottom_label
    _label_head(labels, part_of["head"], skin, yy, head_centre, head_radius, face_visible)
    for side in ("l", "r"):
        _label_limbs(labels, side, part_of, names, skin, yy, kps, scale, bottom_label)
    if bottom_label == ATR["skirt"]:
        _merge_dress(labels, lab)                                                             # rule 6
    labels[~person] = ATR["background"]
    return labels


def _checked_inputs(rgb, keypoints, person_mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rgb = np.asarray(rgb)
    kps = np.asarray(keypoints, dtype=np.float32)
    mask = np.asarray(person_mask, dtype=np.float32)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"parse_offline: rgb must be HxWx3 uint8, got dtype {rgb.dtype} shape {rgb.shape}")
    if kps.shape != (25, 3):
        raise ValueError(f"parse_offline: keypoints must be BODY_25 (25, 3), got {kps.shape}")
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"parse_offline: person_mask shape {mask.shape} differs from the image's {rgb.shape[:2]}")
    return rgb, kps, mask


def _partition(kps: np.ndarray, person: np.ndarray, head_centre, head_radius, scale: float
               ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Rule 1: the person pixels split by their nearest part skeleton; an arm over the torso is in front of it
    and the neck goes with the head. Returns every part's mask and the parts that have a skeleton."""
    shape = person.shape
    skeletons = _part_skeletons(kps, shape, head_centre, head_radius)
    names = [p for p in _PARTS if p in skeletons]
    dist = _skeleton_distances([skeletons[n] for n in names])
    nearest = _nearest_part(dist)
    part_of = {n: (nearest == i) & person for i, n in enumerate(names)}
    empty = np.zeros(shape, dtype=bool)
    for n in _PARTS:
        part_of.setdefault(n, empty)
    arm_radius = 0.14 * scale
    for side in ("l", "r"):
        name = f"{side}_arm"
        if name in names:
            capsule = (dist[names.index(name)] <= arm_radius) & part_of["torso"]
            part_of[name] = part_of[name] | capsule
            part_of["torso"] = part_of["torso"] & ~capsule
    l_sh, r_sh = _joint(kps, "l_shoulder"), _joint(kps, "r_shoulder")
    if head_centre is not None and l_sh is not None and r_sh is not None:
        neck = _above_line(shape, r_sh, l_sh, head_centre) & part_of["torso"]
        part_of["head"] = part_of["head"] | neck
        part_of["torso"] = part_of["torso"] & ~neck
    return part_of, names


def _skeleton_distances(skeletons: list[np.ndarray]) -> np.ndarray:
    """(P, H, W) float32: every pixel's distance to each skeleton (uint8, 255 on the skeleton), written in place
    into one array (stacking P separate results cost a copy of them all)."""
    dist = np.empty((len(skeletons), *skeletons[0].shape), dtype=np.float32)
    for i, skeleton in enumerate(skeletons):
        # 255 off the skeleton, 0 on it: distanceTransform measures the distance to the nearest zero
        cv2.distanceTransform(cv2.compare(skeleton, 0, cv2.CMP_EQ), cv2.DIST_L2, 3, dst=dist[i])
    return dist


def _nearest_part(dist: np.ndarray) -> np.ndarray:
    """HxW index of the smallest of ``dist`` (P, H, W), the first on ties: ``np.argmin(dist, axis=0)``, one
    comparison per part (argmin along the outer axis strides through memory, ~1 ms a frame)."""
    nearest = np.zeros(dist.shape[1:], dtype=np.intp)
    best = dist[0].copy()
    for i in range(1, len(dist)):
        closer = dist[i] < best  # strictly: an equal distance keeps the earlier part, as argmin does
        nearest[closer] = i
        np.minimum(best, dist[i], out=best)
    return nearest


def _nearer(lab: np.ndarray, where: np.ndarray, colour: np.ndarray, other: np.ndarray) -> np.ndarray:
    """HxW bool: the pixels of ``where`` whose CIELAB colour is strictly nearer ``colour`` than ``other``.
    Distances only on those pixels (the whole frame's two norms cost ~1 ms), with the same norm per pixel."""
    sample = lab[where]
    nearer = np.zeros(where.shape, dtype=bool)
    nearer[where] = np.linalg.norm(sample - colour, axis=-1) < np.linalg.norm(sample - other, axis=-1)
    return nearer


def _garment_colours(lab, kps, part_of, person, skin, yy, scale: float):
    """(top colour, bottom colour, the torso's middle row): chest = upper half of the torso polygon; thighs =
    upper 60% of hip -> knee. A colour is None where its region is empty."""
    neck_j, hip_j = _joint(kps, "neck"), _joint(kps, "mid_hip")
    torso_mid_y = (neck_j[1] + hip_j[1]) / 2 if neck_j is not None and hip_j is not None else None
    chest = part_of["torso"] & ~skin & (yy < torso_mid_y if torso_mid_y is not None else True)
    thigh_zone = np.zeros(person.shape, np.uint8)
    for side in ("l", "r"):
        hip, knee = _joint(kps, f"{side}_hip"), _joint(kps, f"{side}_knee")
        if hip is not None and knee is not None:
            cv2.line(thigh_zone, _pt(hip + 0.2 * (knee - hip)), _pt(hip + 0.6 * (knee - hip)), 1,
                     max(int(0.12 * scale), 1))
    thighs = (thigh_zone > 0) & person & ~skin
    return _mean_colour(lab, chest), _mean_colour(lab, thighs), torso_mid_y


def _bottom_kind(kps, person, skin, scale: float) -> int:
    """Rule 5: the bottom garment's ATR label, pants unless a knee-length garment fills the space between the
    legs. Only a garment that stops at the knees (bare shins) can be a skirt here: with covered shins the
    between-legs test is fooled by bent or overlapping trouser legs, so ankle-length garments are pants."""
    profile = _leg_skin_profile(skin, person, kps, 0.12 * scale)
    if profile is not None:
        thigh_skin, shin_skin = profile
        if shin_skin > 0.5 and thigh_skin < 0.5:
            fill = _between_legs_fill(person & ~skin, kps, 0.12, 0.45, _leg_radius(person, kps, scale))
            if fill is None or fill >= SKIRT_FILL:
                return ATR["skirt"]
    return ATR["pants"]


def _label_head(labels, head, skin, yy, head_centre, head_radius, face_visible: bool) -> None:
    if not face_visible:
        labels[head] = ATR["hair"]
        return
    labels[head & skin] = ATR["face"]
    labels[head & ~skin] = ATR["hair"]
    if head_centre is not None:
        collar = head & ~skin & (yy > head_centre[1] + 1.1 * head_radius)
        labels[collar] = ATR["upper_clothes"]


def _label_limbs(labels, side: str, part_of, names, skin, yy, kps, scale: float, bottom_label: int) -> None:
    """One side's arm (skin, else sleeve), leg (skin, else the bottom garment) and shoe (below the ankle)."""
    full = {"l": "left", "r": "right"}[side]
    arm = part_of[f"{side}_arm"]
    labels[arm & skin] = ATR[f"{full}_arm"]
    labels[arm & ~skin] = ATR["upper_clothes"]
    leg = part_of[f"{side}_leg"] | part_of[f"{side}_foot"]
    labels[leg & skin] = ATR[f"{full}_leg"]
    labels[leg & ~skin] = bottom_label
    ankle, knee = _joint(kps, f"{side}_ankle"), _joint(kps, f"{side}_knee")
    if ankle is not None:
        shin = float(np.linalg.norm(ankle - knee)) if knee is not None else 0.25 * scale
        shoe_zone = leg & ~skin & (yy >= ankle[1] - FOOT_ABOVE_ANKLE * shin)
        if f"{side}_foot" in names:
            shoe_zone &= part_of[f"{side}_foot"] | (yy >= ankle[1])
        labels[shoe_zone] = ATR[f"{full}_shoe"]


def _merge_dress(labels: np.ndarray, lab: np.ndarray) -> None:
    """Rule 6: a skirt in the chest garment's colour is one dress."""
    skirt_px = labels == ATR["skirt"]
    skirt_colour = _mean_colour(lab, skirt_px)
    shirt_colour = _mean_colour(lab, labels == ATR["upper_clothes"])
    if (skirt_colour is not None and shirt_colour is not None
            and np.linalg.norm(skirt_colour - shirt_colour) < DRESS_DE):
        labels[skirt_px | (labels == ATR["upper_clothes"])] = ATR["dress"]


def _above_line(shape: tuple[int, int], a: np.ndarray, b: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """HxW bool: pixels on the same side of the line a–b as ``reference``."""
    # broadcast row and column vectors: the same float32 values as a full index grid, without building it
    yy = np.arange(shape[0], dtype=np.float32)[:, None]
    xx = np.arange(shape[1], dtype=np.float32)[None, :]
    cross = lambda x, y: (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])  # noqa: E731
    return np.sign(cross(xx, yy)) == np.sign(cross(reference[0], reference[1]))
