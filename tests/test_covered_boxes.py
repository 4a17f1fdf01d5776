"""Detections covered by more confident ones (densepose.modeling.covered_boxes)."""
import torch

from densepose.modeling.covered_boxes import covered_boxes


def _boxes(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_a_box_straddling_two_found_people_is_covered():
    boxes = _boxes([0, 0, 10, 30], [10, 0, 20, 30], [5, 0, 15, 30], [100, 0, 110, 30])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    assert covered_boxes(boxes, scores, 0.9).tolist() == [False, False, True, False]
    assert not covered_boxes(boxes, scores, 0.0).any()  # 0: off


def test_only_more_confident_detections_of_at_least_the_cover_score_cover():
    boxes = _boxes([0, 0, 10, 30], [10, 0, 20, 30], [5, 0, 15, 30])
    assert not covered_boxes(boxes, torch.tensor([0.9, 0.6, 0.95]), 0.9).any()  # the straddler scores highest
    assert not covered_boxes(boxes, torch.tensor([0.9, 0.4, 0.3]), 0.9).any()  # one neighbour below 0.5
    assert covered_boxes(boxes, torch.tensor([0.9, 0.4, 0.3]), 0.9, cover_score=0.3).tolist() == [False, False, True]
    same = _boxes([0, 0, 10, 30], [0, 0, 10, 30])  # a tie: the earlier detection covers the later
    assert covered_boxes(same, torch.tensor([0.7, 0.7]), 0.9).tolist() == [False, True]


def test_a_person_whose_head_shows_above_the_one_in_front_is_kept():
    front = [0, 10, 20, 60]
    behind = [2, 0, 18, 40]  # a quarter of it (the head) above the front person's box
    scores = torch.tensor([0.9, 0.8])
    assert covered_boxes(_boxes(front, behind), scores, 0.9).tolist() == [False, False]
    assert covered_boxes(_boxes(front, behind), scores, 0.7).tolist() == [False, True]


def test_no_detections():
    assert covered_boxes(torch.zeros(0, 4), torch.zeros(0), 0.9).shape == (0,)


def test_model_files_check_the_fraction():
    import pytest

    from densepose.errors import UserError
    from densepose.modeling import tiny_config
    from densepose.modeling.model_file import model_config_from_dict

    base = {k: v for k, v in vars(tiny_config()).items()}
    assert model_config_from_dict({**base, "drop_covered_fraction": 0.9}, "f").drop_covered_fraction == 0.9
    with pytest.raises(UserError, match="drop_covered_fraction"):
        model_config_from_dict({**base, "drop_covered_fraction": 1.5}, "f")


def test_the_rule_traces_for_any_number_of_boxes():
    """The exported graph drops covered boxes like the eager model: the count is not baked in."""
    def rule(boxes, scores):
        return covered_boxes(boxes, scores, 0.9)

    boxes = _boxes([0, 0, 10, 30], [10, 0, 20, 30], [5, 0, 15, 30], [100, 0, 110, 30])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    traced = torch.jit.trace(rule, (boxes, scores))
    for b, s in [(boxes, scores), (boxes[:3], scores[:3]), (boxes[:0], scores[:0]), (boxes[2:], scores[2:])]:
        assert torch.equal(traced(b, s), rule(b, s))
    assert traced(boxes[:3], scores[:3]).tolist() == [False, False, True]
