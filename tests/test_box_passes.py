"""The box head read again at its own boxes (`densepose.modeling.box_passes.read_boxes`)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from densepose.errors import UserError
from densepose.modeling.box_passes import read_boxes
from densepose.modeling.config import ModelConfig
from densepose.modeling.model_file import model_config_from_dict
from densepose.modeling.ops import box_iou, encode_boxes

WEIGHTS = (10.0, 10.0, 5.0, 5.0)
PERSON = torch.tensor([[40.0, 20, 80, 120]])  # where the person is, in every image


def _halfway_head(calls: list[int]):
    """A box head that sees how much of the person a box holds: it scores a box by its IoU with the
    person and moves it half way there (each row by itself; ``calls`` counts the rows read)."""
    def read(per_image: list[torch.Tensor]):
        boxes = torch.cat(per_image)
        calls.append(len(boxes))
        p = box_iou(boxes, PERSON)[:, 0].clamp(1e-4, 1 - 1e-4)
        logits = torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)
        return logits, encode_boxes(boxes, (boxes + PERSON) / 2, WEIGHTS)
    return read


def test_a_second_read_scores_and_moves_a_box_from_where_it_regressed_it():
    proposals = [torch.tensor([[0.0, 20, 40, 120], [40, 20, 80, 120]])]  # beside the person, on it
    calls: list[int] = []
    (once,), (once_boxes,) = read_boxes(_halfway_head(calls), proposals, [(200, 200)], WEIGHTS)
    (twice,), (twice_boxes,) = read_boxes(_halfway_head(calls), proposals, [(200, 200)], WEIGHTS, passes=2)
    assert calls == [2, 2, 2]
    # Read once: the box beside the person scores 0 and moves half way (to x 20..60).
    torch.testing.assert_close(once_boxes[0], torch.tensor([20.0, 20, 60, 120]))
    assert once[0] < 1e-3
    # Read again at x 20..60 (IoU 1/3 with the person) and moved to 30..70; the two passes averaged.
    torch.testing.assert_close(twice_boxes[0], torch.tensor([25.0, 20, 65, 120]))
    torch.testing.assert_close(twice[0], (once[0] + 1 / 3) / 2, atol=1e-4, rtol=1e-4)
    # The box on the person stays and keeps its score.
    torch.testing.assert_close(twice_boxes[1], PERSON[0])
    torch.testing.assert_close(twice[1], once[1])


def test_only_rows_scoring_enough_are_read_again_and_each_image_keeps_its_rows():
    proposals = [torch.tensor([[0.0, 20, 40, 120], [30, 20, 70, 120]]),
                 torch.tensor([[50.0, 20, 90, 120], [150, 150, 190, 190], [45, 20, 85, 120]])]
    sizes = [(200, 200), (100, 70)]  # the second image clips the boxes at x = 70, y = 100
    calls: list[int] = []
    scores, boxes = read_boxes(_halfway_head(calls), proposals, sizes, WEIGHTS, passes=2, again_min_score=0.2)
    once_scores, once_boxes = read_boxes(_halfway_head([]), proposals, sizes, WEIGHTS)
    assert calls == [5, 3]  # three rows overlap the person by more than 0.2
    assert [len(s) for s in scores] == [len(b) for b in boxes] == [2, 3]
    for image, again in enumerate([[False, True], [True, False, True]]):
        for row, read_again in enumerate(again):
            if read_again:
                assert not torch.equal(boxes[image][row], once_boxes[image][row])
            else:
                torch.testing.assert_close(boxes[image][row], once_boxes[image][row])
                torch.testing.assert_close(scores[image][row], once_scores[image][row])
    assert float(boxes[1][:, 2].max()) <= 70 and float(boxes[1][:, 3].max()) <= 100


def test_model_files_check_the_box_head_passes():
    base = ModelConfig().to_dict()
    assert ModelConfig().box_head_passes == 1  # files without the setting read each box once
    config = model_config_from_dict({**base, "box_head_passes": 2, "box_again_min_score": 0.05}, "f")
    assert (config.box_head_passes, config.box_again_min_score) == (2, 0.05)
    for bad in ({"box_head_passes": 0}, {"box_head_passes": 50}, {"box_again_min_score": 2.0}):
        with pytest.raises(UserError, match=next(iter(bad))):
            model_config_from_dict({**base, **bad}, "f")
    assert replace(ModelConfig(), box_head_passes=3).box_head_passes == 3
