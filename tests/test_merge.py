"""ATR 18 -> REMOT 6 region merge: validation messages and the merge itself."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.labels import ATR, ATR_LABELS, DEFAULT_MERGE, REGIONS, validate_merge_map
from pipeline.layout.merge import merge_layout, merge_lookup


def _default() -> dict[str, list[str]]:
    return {region: list(classes) for region, classes in DEFAULT_MERGE.items()}


def test_default_map_is_valid_and_complete():
    validate_merge_map(DEFAULT_MERGE)
    lookup = merge_lookup(DEFAULT_MERGE)
    assert lookup.shape == (18,) and lookup.dtype == np.uint8
    assert lookup[ATR["face"]] == REGIONS.index("head")
    assert lookup[ATR["dress"]] == REGIONS.index("top")
    assert lookup[ATR["skirt"]] == REGIONS.index("bottom")
    assert lookup[ATR["right_shoe"]] == REGIONS.index("shoes")
    assert lookup[ATR["left_leg"]] == REGIONS.index("limbs")
    assert lookup[ATR["bag"]] == lookup[ATR["background"]] == REGIONS.index("background")


def test_unknown_class_is_named_with_the_allowed_names():
    mapping = _default()
    mapping["head"].append("hairband")
    with pytest.raises(ValueError, match="'hairband'") as err:
        validate_merge_map(mapping)
    assert "upper_clothes" in str(err.value) and "left_shoe" in str(err.value)  # lists allowed names


def test_double_mapping_names_the_class_and_both_regions():
    mapping = _default()
    mapping["top"].append("belt")
    with pytest.raises(ValueError, match="'belt'.*'top'.*'bottom'|'belt'.*'bottom'.*'top'"):
        validate_merge_map(mapping)
    mapping = _default()
    mapping["head"].append("hat")
    with pytest.raises(ValueError, match="'hat' is mapped twice in region 'head'"):
        validate_merge_map(mapping)


def test_missing_class_is_named():
    mapping = _default()
    mapping["background"].remove("bag")
    with pytest.raises(ValueError, match="'bag' not mapped"):
        validate_merge_map(mapping)


def test_unknown_region_is_named():
    mapping = _default()
    mapping["accessories"] = mapping.pop("background")
    with pytest.raises(ValueError, match="unknown region 'accessories'.*head, top, bottom"):
        validate_merge_map(mapping)


def test_merge_of_a_synthetic_label_map():
    atr = np.array([
        [ATR["background"], ATR["hair"], ATR["face"], ATR["hat"]],
        [ATR["upper_clothes"], ATR["dress"], ATR["scarf"], ATR["left_arm"]],
        [ATR["pants"], ATR["skirt"], ATR["belt"], ATR["right_leg"]],
        [ATR["left_shoe"], ATR["right_shoe"], ATR["bag"], ATR["sunglasses"]],
    ], dtype=np.uint8)
    h, t, b, s, l, g = range(6)
    expected = np.array([[g, h, h, h], [t, t, t, l], [b, b, b, l], [s, s, g, h]], dtype=np.uint8)
    layout = merge_layout(atr, merge_lookup(DEFAULT_MERGE))
    assert layout.dtype == np.uint8
    np.testing.assert_array_equal(layout, expected)


def test_custom_map_changes_the_layout():
    mapping = _default()
    mapping["top"].remove("dress")
    mapping["bottom"].append("dress")
    atr = np.full((2, 2), ATR["dress"], np.uint8)
    assert (merge_layout(atr, merge_lookup(mapping)) == REGIONS.index("bottom")).all()


def test_merge_rejects_non_atr_labels():
    lookup = merge_lookup(DEFAULT_MERGE)
    with pytest.raises(ValueError, match="not an 18-class ATR"):
        merge_layout(np.array([[0, len(ATR_LABELS) + 1]], np.uint8), lookup)
    with pytest.raises(ValueError, match="shape"):
        merge_layout(np.zeros((2, 2), np.uint8), lookup[:5])
