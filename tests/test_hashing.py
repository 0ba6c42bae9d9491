"""pipeline.core.hashing: the one fingerprint of JSON-able values, equal to the inline formulas it replaced
(so stamps, checkpoints' params_hash and shard indexes written before stay valid)."""
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
