"""pipeline.core.hashing: the one fingerprint of JSON-able values and the one sha256 of text (hex, integer),
equal to the inline formulas they replaced (so stamps, checkpoints' params_hash, shard indexes, splits and seeds
written before stay valid)."""
from __future__ import annotations

import hashlib
import json

from pipeline.core.hashing import fingerprint, json_sha256


def test_fingerprint_is_sha256_of_sorted_json_cut_to_length():
    value = {"b": [1, 2, {"z": 1, "a": None}], "a": "x"}
    blob = json.dumps(value, sort_keys=True).encode()
    assert fingerprint(value) == hashlib.sha256(blob).hexdigest()[:16]
    assert fingerprint(value, 24) == hashlib.sha256(blob).hexdigest()[:24]
    assert json_sha256(value).hexdigest() == hashlib.sha256(blob).hexdigest()
    # a list of strings (the per-video stamp) hashes as plain json.dumps did
    assert fingerprint(["pose-v1:abc", ["s1", "s2"]], 24) == \
        hashlib.sha256(json.dumps(["pose-v1:abc", ["s1", "s2"]]).encode()).hexdigest()[:24]
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})


def test_json_sha256_can_be_extended():
    digest = json_sha256({"format": 2})
    digest.update(b"file\x00abc\n")
    expected = hashlib.sha256(json.dumps({"format": 2}, sort_keys=True).encode() + b"file\x00abc\n")
    assert digest.hexdigest() == expected.hexdigest()


def test_stored_fingerprints_and_seeds_keep_their_values():
    """Values computed by the code before the hashes shared one helper (issue 23 item 6): stamps, split
    assignments, shard source frames, initial weights and warm-up lengths written or drawn before stay valid."""
    from pipeline.core.params import PreprocessParams, section_fingerprint
    from pipeline.core.seeds import derive_seed, init_seed
    from pipeline.datasets.base import name_hash
    from pipeline.datasets.folder import split_by_hash
    from pipeline.shards.windows import _uniform_index, source_seed_material
    from pipeline.training.steps import warmup_length

    assert fingerprint({"a": [1, 2.5, "x"]}) == "42e8953dff6325ad"
    assert fingerprint(["pose-v1:abc", ["s1", "s2"]], 24) == "9e8d15ffdb84cc6f9ac456d2"
    assert section_fingerprint(PreprocessParams()) == "70d0c5d39030744e"
    assert derive_seed("init", 0, "layout") == 3395985360959685667
    assert init_seed(7, "wcn") == 5911716882268367844
    assert [warmup_length(s, 5) for s in range(12)] == [5, 2, 4, 4, 0, 1, 4, 3, 5, 5, 0, 1]
    assert _uniform_index(source_seed_material(0, "demo", "clip_000", 16), 1000003) == 510650
    assert _uniform_index(b"abc", 97) == 22
    assert name_hash("sub/dir/clip.mp4") == "9623f33d03"
    assert name_hash("a\udcff", 12) == "8dd06b5ab6b5"
    assert split_by_hash([f"v{i}" for i in range(10)], 0.2, 0, 0.2) == {
        "v0": "train", "v1": "train", "v2": "train", "v3": "test", "v4": "val", "v5": "val", "v6": "train",
        "v7": "train", "v8": "train", "v9": "test"}
