"""Register datasets in ``params.yaml`` and scan them into video lists.

The registry is the ``datasets:`` section of params.yaml, so adding a dataset is a parameter change that DVC
tracks like any other (``dvc repro`` then processes it; ``dvc exp`` can vary it).
"""
from __future__ import annotations

import io
from pathlib import Path

from pipeline.core.image_limits import DEFAULT_MAX_PIXELS, NotAnImage, TooManyPixels, check_image_pixels, open_video
from pipeline.core.params import DATASET_NAME, DatasetSpec, Params, ParamsError, validate_params
from pipeline.datasets.base import DatasetError, Scan, VideoEntry, list_frames
from pipeline.datasets.folder import scan_folder
from pipeline.datasets.iper import scan_iper
from pipeline.datasets.solodance import scan_solodance


def dataset_root(spec: DatasetSpec, project_root: Path) -> Path:
    path = Path(spec.path)
    return path if path.is_absolute() else project_root / path


def scan_dataset(name: str, spec: DatasetSpec, project_root: Path = Path(".")) -> Scan:
    root = dataset_root(spec, project_root)
    if not root.is_dir():
        raise DatasetError(f"dataset {name!r}: folder {root} does not exist "
                           f"(fix datasets.{name}.path in params.yaml, or run `remot demo-data` for the demo)")
    if spec.kind == "iper":
        scan = scan_iper(name, root)
    elif spec.kind == "solodance":
        scan = scan_solodance(name, root)
    else:
        scan = scan_folder(name, root, spec.test_ratio, spec.seed, spec.val_ratio)
    if not scan.videos:
        raise DatasetError(f"dataset {name!r}: no videos or frame folders found under {root}")
    return scan


def probe_readable(scan: Scan, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Open every video and read one frame; unreadable inputs become problems (extraction skips them too).

    A video declaring frames over ``max_pixels`` (``limits.max_pixels``) is a problem found from its headers,
    before a frame is decoded; so is a frame folder whose first image does (extraction measures every one)."""
    for video in scan.videos:
        if video.is_frame_folder:
            frames = list_frames(video.source)
            if not frames:
                scan.problems.append(f"{video.source}: empty frame folder")
                continue
            try:
                check_image_pixels(frames[0], max_pixels)
            except (TooManyPixels, NotAnImage) as exc:
                scan.problems.append(str(exc))
            continue
        try:
            capture = open_video(video.source, max_pixels)
        except TooManyPixels as exc:
            scan.problems.append(str(exc))
            continue
        ok = capture is not None and capture.read()[0]
        if capture is not None:
            capture.release()
        if not ok:
            scan.problems.append(f"{video.source}: cannot decode a frame (corrupt, empty or not a video)")


def describe(scan: Scan) -> str:
    counts = scan.split_counts()
    n_files = sum(1 for v in scan.videos if not v.is_frame_folder)
    lines = [
        f"dataset {scan.dataset!r} ({scan.kind}) at {scan.root}",
        f"  videos: {len(scan.videos)} ({n_files} video files, {len(scan.videos) - n_files} frame folders, "
        f"{scan.frame_count()} frames in folders)",
        "  splits: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        f"  problems: {len(scan.problems)}",
    ]
    lines += [f"    - {p}" for p in scan.problems]
    return "\n".join(lines)


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip mode keeps the comments and order of the hand-written params.yaml
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


# Folders under data_root that only hold inputs: everything else there is the pipeline's output, which stages
# replace and remove (the demo generator writes its raw videos to data_root/raw/).
RAW_INPUT_FOLDER = "raw"


def check_new_registration(doc: dict, name: str, path: str, project_root: Path, replace: bool) -> None:
    """Refuse, unless ``replace``, to re-point an existing dataset name (the next ``dvc repro`` would remove the
    old dataset's outputs) or to register a folder inside data_root's output folders (a stage run would
    overwrite or remove the videos themselves)."""
    if replace:
        return
    old = (doc.get("datasets") or {}).get(name)
    if old is not None:
        raise ParamsError(f"dataset {name!r} is already registered (path {old.get('path')!r}); pass --replace to "
                          f"point it at {path!r} (the next `dvc repro` removes the old dataset's outputs), or "
                          "choose another name")
    data_root = Path(str(doc.get("data_root") or "data"))
    data_root = (data_root if data_root.is_absolute() else project_root / data_root).resolve()
    target = Path(path)
    target = (target if target.is_absolute() else project_root / target).resolve()
    if target.is_relative_to(data_root) and not target.is_relative_to(data_root / RAW_INPUT_FOLDER):
        raise ParamsError(f"{path} is inside data_root ({data_root}), whose folders the stages overwrite and "
                          f"remove: move the videos outside it (or under {data_root / RAW_INPUT_FOLDER}), or pass "
                          "--replace if you really mean it")


def add_dataset(params_file: Path, name: str, path: str, kind: str, test_ratio: float | None = None,
                seed: int | None = None, replace: bool = False, val_ratio: float | None = None) -> tuple[Params, Scan]:
    """Validate the layout, then write ``datasets.<name>`` into params.yaml (atomically; it keeps its mode).
    An existing name or a folder inside data_root's outputs is refused unless ``replace``."""
    from pipeline.core.atomic import write_bytes

    if not DATASET_NAME.match(name):
        raise ParamsError(f"dataset name {name!r} must match {DATASET_NAME.pattern}")
    entry: dict[str, object] = {"kind": kind, "path": path}
    if test_ratio is not None:
        entry["test_ratio"] = test_ratio
    if val_ratio is not None:
        entry["val_ratio"] = val_ratio
    if seed is not None:
        entry["seed"] = seed
    spec = DatasetSpec.model_validate(entry)
    project_root = params_file.parent
    scan = scan_dataset(name, spec, project_root)

    yaml = _yaml()
    doc = yaml.load(params_file.read_text()) if params_file.exists() else {}
    if doc is None:
        doc = {}
    check_new_registration(doc, name, path, project_root, replace)
    doc.setdefault("datasets", {})
    if doc["datasets"] is None:
        doc["datasets"] = {}
    doc["datasets"][name] = entry
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    import yaml as pyyaml

    params = validate_params(pyyaml.safe_load(buffer.getvalue()), str(params_file))
    probe_readable(scan, params.limits.max_pixels)  # the project's own cap, so after its params are read
    write_bytes(params_file, buffer.getvalue().encode())
    return params, scan


def write_video_list(path: Path, scans: list[Scan], project_root: Path = Path(".")) -> None:
    """The register stage's output: every usable video with its split, and the paths (relative to their dataset
    root) the scan could not read, read by the extraction stage (which then removes nothing)."""
    from pipeline.core.atomic import write_json

    root = project_root.resolve()
    rows = []
    for scan in scans:
        for v in scan.videos:
            source = v.source.resolve()
            shown = source.relative_to(root) if source.is_relative_to(root) else source
            rows.append({"dataset": v.dataset, "video": v.video, "source": str(shown),
                         "frame_folder": v.is_frame_folder, "split": v.split})
    unreadable = sorted(p for scan in scans for p in scan.unreadable)
    # the key only when there are gaps: a complete scan's list stays byte-identical to what it always was
    write_json(path, {"videos": rows, **({"unreadable": unreadable} if unreadable else {})})


def read_video_list(path: Path, project_root: Path = Path(".")) -> list[VideoEntry]:
    import json

    if not path.is_file():
        raise DatasetError(f"{path} not found: run the register stage first (`dvc repro register`)")
    rows = json.loads(path.read_text())["videos"]
    return [VideoEntry(r["dataset"], r["video"], project_root / r["source"], r["frame_folder"], r["split"])
            for r in rows]


def read_unreadable(path: Path) -> list[str]:
    """The paths the register stage's scan could not read (see :func:`write_video_list`); [] for a full scan."""
    import json

    return list(json.loads(path.read_text()).get("unreadable", []))
