"""Small models with a facing classifier, and renders-like folders of people whose facing shows, for
the facing and person-check tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from densepose.modeling import ModelConfig, tiny_config

TORSO_BACK, TORSO_FRONT = 1, 2


def facing_config(**overrides) -> ModelConfig:
    """A tiny detector with the facing classifier (and anything ``overrides`` turns on) that finds
    boxes on any 64-pixel image (score threshold 0)."""
    return tiny_config(score_thresh_test=0.0, backbone_width=8, fpn_channels=16, dp_decoder_conv_dim=16,
                       dp_decoder_channels=16, dp_dim=32, box_fc_dim=32, min_size_test=64, max_size=128,
                       rpn_pre_nms_topk_test=100, rpn_post_nms_topk_test=30, detections_per_image=4, facing_on=True,
                       **overrides)


def write_bright_dark_people(folder: Path, count: int) -> None:
    """``folder``/images/{1..count}.png and annotations.json: one person per 96-pixel image in the box
    [30, 10, 30, 80] (xywh), bright when facing the camera (even ids: torso points mostly front),
    dark when facing away (odd ids)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    anns = []
    for i in range(1, count + 1):
        faces_camera = i % 2 == 0
        pixels = rng.integers(0, 60, (96, 96, 3), dtype=np.uint8)
        pixels[10:90, 30:60] = 230 if faces_camera else 20
        Image.fromarray(pixels).save(folder / "images" / f"{i}.png")
        torso = [TORSO_FRONT] * 6 + [TORSO_BACK] if faces_camera else [TORSO_BACK] * 6 + [TORSO_FRONT]
        anns.append({"id": i, "image_id": i, "iscrowd": 0, "bbox": [30, 10, 30, 80], "dp_I": torso + [9, 8],
                     "dp_x": list(np.linspace(0, 255, 9))})
    coco = {"images": [{"id": i, "file_name": f"{i}.png", "height": 96, "width": 96} for i in range(1, count + 1)],
            "annotations": anns}
    (folder / "annotations.json").write_text(json.dumps(coco))
