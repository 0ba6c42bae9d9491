"""The ``remot`` command: parameters, datasets, demo data. Stages themselves run through DVC (``dvc repro``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.errors import run_guarded


def _params_check(args: argparse.Namespace) -> int:
    from pipeline.core.params import load_params

    params = load_params(args.params)
    print(f"{args.params}: ok ({len(params.datasets)} datasets: {', '.join(params.datasets) or 'none'})")
    return 0


def _dataset_add(args: argparse.Namespace) -> int:
    from pipeline.datasets import add_dataset, describe

    _, scan = add_dataset(Path(args.params), args.name, args.path, args.kind, args.test_ratio, args.seed,
                          replace=args.replace, val_ratio=args.val_ratio)
    print(describe(scan))
    print(f"registered {args.name!r} in {args.params}; `dvc repro` processes it")
    return 0


def _dataset_check(args: argparse.Namespace) -> int:
    from pipeline.datasets import describe, probe_readable, scan_dataset
    from pipeline.core.params import ParamsError, load_params

    params = load_params(args.params)
    if args.name not in params.datasets:
        raise ParamsError(f"no dataset {args.name!r} in {args.params}; registered: "
                          f"{', '.join(params.datasets) or 'none'} (add one with `remot dataset add`)")
    scan = scan_dataset(args.name, params.datasets[args.name], Path(args.params).resolve().parent)
    probe_readable(scan, params.limits.max_pixels)
    print(describe(scan))
    return 1 if scan.problems and args.strict else 0


def _dataset_list(args: argparse.Namespace) -> int:
    from pipeline.core.params import load_params

    for name, spec in load_params(args.params).datasets.items():
        print(f"{name}\t{spec.kind}\t{spec.path}")
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from pipeline.demo_data import generate_demo_dataset
    from pipeline.core.params import load_params

    demo = load_params(args.params).demo
    out = Path(args.out or demo.out)
    summary = generate_demo_dataset(out, n_clips=demo.n_clips, n_frames=demo.n_frames, seed=demo.seed)
    print(f"demo data in {out}: {summary}")
    return 0


def _model_info(args: argparse.Namespace) -> int:
    from remot_models import (LayoutGenerator, RegionGenerator, WholeCompositionNetwork, count_parameters)
    from pipeline.core.params import load_params, model_config

    section = load_params(args.params).model
    cfg = model_config(section)
    print(f"profile {section.profile}: gam={cfg.gam} wcn={cfg.wcn} tam={cfg.tam}")
    for name, net in (("Layout GAN generator", LayoutGenerator(cfg)), ("Region GAN generator", RegionGenerator(cfg)),
                      ("Whole Composition Network", WholeCompositionNetwork(cfg))):
        print(f"  {name:28s} {count_parameters(net):>12,d} parameters")
    return 0


def _transfer(args: argparse.Namespace) -> int:
    from pipeline.core.compute import cap_torch_threads
    from pipeline.core.params import load_params
    from pipeline.inference.transfer import run_transfer

    # a shared CPU box: oversubscribed intra-op threads make the small per-frame convolutions slower, not faster
    cap_torch_threads()
    params = load_params(args.params)
    result = run_transfer(params, Path(args.params).resolve().parent, args.source, args.driving, args.out,
                          checkpoint=args.checkpoint, side_by_side_video=args.side_by_side, device=args.device,
                          progress=not args.quiet, force=args.force,
                          params_file=args.params, precision=args.precision)
    b = result.backends
    print(f"wrote {result.out}: {result.n_frames} frames, {result.width}x{result.height}, {result.fps:g} fps "
          f"(the driving video's); person composed on the driving video's background plate")
    print(f"speed: {result.network_frames_per_s:.1f} frames/s in the networks, {result.frames_per_s:.2f} "
          f"frames/s end to end with preprocessing after {result.seconds['startup']:.1f} s of start-up "
          f"({b['device']}, profile {b['profile']}, {b['precision']})")
    print(f"backends: pose {b.get('pose')}, parser {b.get('parser')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remot", description="REMOT data pipeline and motion transfer")
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    parser.add_argument("--verbose", action="store_true",
                        help="show native libraries' log lines (MediaPipe/TFLite) and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    params = sub.add_parser("params", help="parameter file tools").add_subparsers(dest="action", required=True)
    params.add_parser("check", help="validate params.yaml against the schema").set_defaults(func=_params_check)

    dataset = sub.add_parser("dataset", help="register and check datasets").add_subparsers(dest="action",
                                                                                          required=True)
    add = dataset.add_parser("add", help="validate a dataset folder and register it in params.yaml")
    add.add_argument("name")
    add.add_argument("path")
    add.add_argument("--kind", required=True, choices=["iper", "solodance", "folder"])
    add.add_argument("--test-ratio", type=float, default=None, help="folder kind: share of videos for test")
    add.add_argument("--val-ratio", type=float, default=None,
                     help="folder kind: share of videos for validation (recipe choices; never test)")
    add.add_argument("--seed", type=int, default=None, help="folder kind: seed of the hash split")
    add.add_argument("--replace", action="store_true",
                     help="allow re-pointing an existing name or a folder inside data_root's stage outputs")
    add.set_defaults(func=_dataset_add)
    check = dataset.add_parser("check", help="re-scan a registered dataset and list problems")
    check.add_argument("name")
    check.add_argument("--strict", action="store_true", help="exit 1 when problems are found")
    check.set_defaults(func=_dataset_check)
    dataset.add_parser("list", help="list registered datasets").set_defaults(func=_dataset_list)

    model = sub.add_parser("model", help="network information").add_subparsers(dest="action", required=True)
    model.add_parser("info", help="parameter counts of the configured profile").set_defaults(func=_model_info)

    demo = sub.add_parser("demo-data", help="generate the procedural demo dataset (no third-party footage)")
    demo.add_argument("--out", default=None, help="output folder (default: params demo.out)")
    demo.set_defaults(func=_demo_data)

    transfer = sub.add_parser("transfer", help="motion transfer: the source person performs the driving video",
                              description="Crop, pose and parse both inputs with the backends the params select, "
                              "run the trained Layout GAN -> Region GAN -> WCN with temporal state, compose on "
                              "the driving video's background plate and write an mp4 (atomically).")
    transfer.add_argument("--source", required=True, help="image of one person (the identity)")
    transfer.add_argument("--driving", required=True, help="video of one person (the motion)")
    transfer.add_argument("--out", required=True, help="output .mp4 (never one of the inputs)")
    transfer.add_argument("--force", action="store_true", help="overwrite --out when it already exists")
    transfer.add_argument("--checkpoint", default=None,
                          help="folder holding layout/final, region/final, wcn/final (default: params train.out)")
    transfer.add_argument("--side-by-side", action="store_true", help="write source | driving | output")
    transfer.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    transfer.add_argument("--quiet", action="store_true", help="no progress bar")
    transfer.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                          help="the networks' arithmetic: bf16 (autocast) is faster on CPUs with bfloat16 "
                               "instructions and approximates fp32 (README, Benchmarks)")
    transfer.set_defaults(func=_transfer)
    return parser


def main(argv: list[str] | None = None, quiet_native: bool | None = None) -> int:
    """``quiet_native``: filter native log lines from fd 2 (default: when run as the ``remot`` command, i.e.
    ``argv`` is None, and not ``--verbose``; tests calling ``main([...])`` keep their own stderr capture)."""
    args = build_parser().parse_args(argv)
    if (argv is None if quiet_native is None else quiet_native) and not args.verbose:
        from pipeline.core.native_logs import quiet_native_logs

        quiet_native_logs()
    return run_guarded(args.func, args, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
