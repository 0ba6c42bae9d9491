"""Merge SCHP's 18 ATR parsing classes into REMOT's 6 layout regions (paper 3.1).

The merge is a user parameter (``params.yaml: merge.classes``), a mapping ``region -> [ATR class names]``;
``pipeline.core.labels.DEFAULT_MERGE`` is the default. It is validated (``pipeline.core.labels.validate_merge_map``, which the params schema also runs) against the fixed label sets so a
typo fails loudly before any frame is processed, instead of silently turning a class into background.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from pipeline.core.labels import ATR_LABELS, REGIONS, validate_merge_map


def merge_lookup(mapping: Mapping[str, Iterable[str]]) -> np.ndarray:
    """Validate ``mapping`` and return a (18,) uint8 table: ATR label value -> region index in ``REGIONS``."""
    validate_merge_map(mapping)
    lookup = np.empty(len(ATR_LABELS), dtype=np.uint8)
    for region, classes in mapping.items():
        for name in classes:
            lookup[ATR_LABELS.index(name)] = REGIONS.index(region)
    return lookup


def merge_layout(atr_labels: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    """Map an HxW uint8 ATR label image to an HxW uint8 layout with values 0..5 in ``REGIONS`` order.

    ``lookup`` comes from ``merge_lookup``. A label value >= 18 means the input is not an ATR parsing (e.g. a
    LIP-label image, 20 classes) and raises ``ValueError`` rather than being wrapped or clipped.
    """
    atr_labels = np.asarray(atr_labels)
    lookup = np.asarray(lookup, dtype=np.uint8)
    if lookup.shape != (len(ATR_LABELS),):
        raise ValueError(f"lookup must have shape ({len(ATR_LABELS)},), got {lookup.shape}; build it with merge_lookup")
    if atr_labels.ndim != 2:
        raise ValueError(f"ATR labels must be a 2-D HxW label image, got shape {atr_labels.shape}")
    if atr_labels.size and int(atr_labels.max()) >= len(ATR_LABELS):
        raise ValueError(f"ATR labels contain value {int(atr_labels.max())} >= {len(ATR_LABELS)}: "
                         "not an 18-class ATR parsing (LIP-label output must be converted first)")
    return lookup[atr_labels.astype(np.intp, copy=False)]
