"""Class labels of a conditional generator: which class each drawn image is asked for.

NumPy only: the GAN, the drawing module and the export all pick labels the same way.
"""

from __future__ import annotations

import numpy as np

from kgan.config import MAX_CLASSES
from kgan.errors import KganError


def labels_for(n: int, num_classes: int | None, labels=None) -> np.ndarray | None:
    """`n` int32 labels: `labels` (one, or one per image), by default 0, 1, ... in turn.

    None for an unconditional model (`num_classes` None); `labels` then raises `KganError`.
    """
    if not num_classes:
        if labels is not None:
            raise KganError("--label needs a conditional run (trained with --conditional)")
        return None
    if labels is None:
        return np.arange(n, dtype="int32") % num_classes
    labels = np.asarray(labels).reshape(-1)
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise KganError(f"`label` must be in [0, {num_classes}) for this run. "
                        f"Received: label={bad[0]}")
    return np.broadcast_to(labels.astype("int32"), (n,)).copy()


def parse_labels(spec: str) -> list[int]:
    """`"3"`, `"0-9"` or `"0,2,5"` (or a mix, `"0-2,7"`) -> the listed labels in order."""
    labels = []
    try:
        for part in spec.split(","):
            first, _, last = part.strip().partition("-")
            first, last = int(first), int(last or first)
            if not 0 <= first <= last < MAX_CLASSES:  # a class number, not a memory hog
                raise ValueError
            labels += range(first, last + 1)
    except ValueError:
        labels = []
    if not labels:
        raise KganError(f"`labels` must look like 3, 0-9 or 0,2,5 (class numbers below "
                        f"{MAX_CLASSES}). Received: labels={spec}")
    return labels
