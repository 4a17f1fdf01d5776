"""DensePose part numbering: the 24 charts, the 14 coarse mask parts, the 8 kappa groups, and flips.

Chart indices follow DensePose-COCO (0 is background). "Left" and "right" are the person's own.
"""
from __future__ import annotations

import numpy as np

NUM_CHARTS = 24
NUM_MASK_PARTS = 14

#: Name of chart i at index i (index 0 is the background).
CHART_NAMES: tuple[str, ...] = (
    "background",
    "torso back", "torso front", "right hand", "left hand", "left foot", "right foot",
    "upper leg right back", "upper leg left back", "upper leg right front", "upper leg left front",
    "lower leg right back", "lower leg left back", "lower leg right front", "lower leg left front",
    "upper arm left front", "upper arm right front", "upper arm left back", "upper arm right back",
    "lower arm left front", "lower arm right front", "lower arm left back", "lower arm right back",
    "head right", "head left",
)

#: The 14 coarse parts of ``dp_masks``, in the order of that list (mask label k is entry k-1).
MASK_PART_NAMES: tuple[str, ...] = (
    "torso", "right hand", "left hand", "left foot", "right foot",
    "upper leg right", "upper leg left", "lower leg right", "lower leg left",
    "upper arm left", "upper arm right", "lower arm left", "lower arm right", "head",
)

#: Mask label (1..14) of each chart (index 0 -> 0).
CHART_TO_MASK_PART = np.array(
    [0, 1, 1, 2, 3, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 12, 13, 12, 13, 14, 14], dtype=np.int64
)

#: Horizontal flip: chart i of a person becomes chart CHART_FLIP[i] in the mirrored image.
CHART_FLIP = np.array(
    [0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23], dtype=np.int64
)

#: Turned around (180 degrees about the vertical): the chart seen at the same place in the image when
#: the person faces the other way; right front <-> left back, left front <-> right back, torso
#: front <-> back, and the two sides of hands, feet and head. A model that cannot tell which way a
#: person faces confuses chart i with CHART_TURN[i] (`benchmarks/orientation.py` measures it).
CHART_TURN = np.array(
    [0, 2, 1, 4, 3, 6, 5, 10, 9, 8, 7, 14, 13, 12, 11, 18, 17, 16, 15, 22, 21, 20, 19, 24, 23], dtype=np.int64
)

#: Horizontal flip of mask labels 0..14.
MASK_PART_FLIP = np.array([0, 1, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 14], dtype=np.int64)

#: The 8 coarse groups of the per-part kappa protocol (index 0 unused).
KAPPA_GROUP_NAMES: tuple[str, ...] = (
    "", "torso", "hands", "feet", "upper legs", "lower legs", "upper arms", "lower arms", "head",
)

#: Kappa group (1..8) of each chart (index 0 -> 0); the official evaluator's ``CoarseParts``.
CHART_TO_KAPPA_GROUP = np.array(
    [0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8], dtype=np.int64
)

#: The official evaluator's per-group kappa on the SMPL surface (metres; index 0 unused).
OFFICIAL_SMPL_KAPPA = np.array([0.0, 0.351, 0.107, 0.126, 0.237, 0.173, 0.142, 0.128, 0.150])

#: The paper's single kappa (metres).
PAPER_KAPPA = 0.255

#: One colour per chart (index 0 black), chosen so that neighbouring parts differ; RGB uint8.
CHART_COLORS = np.array(
    [
        [0, 0, 0],
        [70, 110, 170], [110, 160, 230], [230, 90, 60], [250, 170, 60], [150, 90, 200], [200, 140, 240],
        [40, 140, 90], [150, 150, 40], [90, 200, 130], [220, 220, 90],
        [30, 100, 120], [170, 100, 40], [80, 200, 210], [240, 160, 110],
        [220, 60, 120], [120, 60, 160], [250, 130, 180], [170, 130, 230],
        [200, 40, 40], [60, 60, 200], [250, 110, 110], [120, 130, 250],
        [240, 200, 160], [200, 170, 130],
    ],
    dtype=np.uint8,
)


def chart_to_mask_part(charts: np.ndarray) -> np.ndarray:
    """Map chart labels (any shape, 0..24) to coarse mask labels (0..14)."""
    return CHART_TO_MASK_PART[np.asarray(charts, dtype=np.int64)]
