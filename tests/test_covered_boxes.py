"""Detections that repeat more confident ones (densepose.modeling.covered_boxes): covered boxes and
wider boxes."""
import torch

from densepose.modeling.covered_boxes import covered_boxes, demote_repeated, repeated_boxes, wider_boxes


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


def test_a_part_inside_a_person_scoring_a_hair_above_them_is_covered():
    """basketball1.png in bf16: a patch of the shirt (0.727) inside the player's box (0.715)."""
    person, patch = [446, 49, 629, 464], [556, 306, 601, 392]
    assert covered_boxes(_boxes(person, patch), torch.tensor([0.715, 0.727]), 0.85).tolist() == [False, True]
    # Clearly more confident than the person: the patch stays (as the rule was before).
    assert covered_boxes(_boxes(person, patch), torch.tensor([0.715, 0.8]), 0.85).tolist() == [False, False]
    # A box under four times the person's area does not cover them at a near tie.
    behind = [10, 10, 40, 70]  # 1,800 px inside a 7,200 px box: four times, a box of 7,199 is not
    assert covered_boxes(_boxes([0, 0, 60, 120], behind), torch.tensor([0.7, 0.72]), 0.85).tolist() == [False, True]
    assert covered_boxes(_boxes([0, 0, 60, 119.9], behind), torch.tensor([0.7, 0.72]), 0.85).tolist() == [False, False]
    # The larger box must itself reach the cover score.
    assert not covered_boxes(_boxes(person, patch), torch.tensor([0.45, 0.48]), 0.85).any()


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


def test_a_wider_box_around_a_walker_and_half_his_neighbour_is_dropped():
    walker, neighbour = [0, 0, 10, 30], [14, 0, 24, 30]
    around = [0, 0, 18, 30]  # the walker and part of the neighbour: 1.8x the walker's area, IoU 0.56 with him
    boxes = _boxes(walker, neighbour, around)
    assert wider_boxes(boxes, torch.tensor([0.95, 0.6, 0.9]), 0.3).tolist() == [False, False, True]
    # the neighbour alone does not cover it (the covered rule keeps it: a strip between them is open)
    assert not covered_boxes(boxes, torch.tensor([0.95, 0.6, 0.9]), 0.9).any()
    assert repeated_boxes(boxes, torch.tensor([0.95, 0.6, 0.9]), 0.9, 0.3).tolist() == [False, False, True]
    assert not wider_boxes(boxes, torch.tensor([0.95, 0.6, 0.9]), 0.0).any()  # 0: off
    assert not repeated_boxes(boxes, torch.tensor([0.95, 0.6, 0.9]), 0.0, 0.0).any()


def test_a_repeated_box_keeps_a_fraction_of_its_score_where_the_model_says_so():
    walker, neighbour = [0, 0, 10, 30], [14, 0, 24, 30]
    around = [0, 0, 18, 30]  # the wider box of the test above
    boxes, scores = _boxes(walker, neighbour, around), torch.tensor([0.95, 0.6, 0.9])
    lowered, kept = demote_repeated(boxes, scores, 0.9, 0.3, 0.3)
    torch.testing.assert_close(lowered, torch.tensor([0.95, 0.6, 0.27]))
    assert kept.all()
    same, kept = demote_repeated(boxes, scores, 0.9, 0.3, 0.0)  # 0: dropped, as before the setting
    assert torch.equal(same, scores) and kept.tolist() == [True, True, False]
    # the rules read the scores as they came: the wider second box, lowered under 0.5, still covers
    # the third, which lies inside it and not inside the first
    inside = _boxes([0, 0, 10, 30], [0, 0, 16, 30], [11, 1, 15, 29])
    lowered, _ = demote_repeated(inside, torch.tensor([0.9, 0.8, 0.7]), 0.9, 0.3, 0.1)
    torch.testing.assert_close(lowered, torch.tensor([0.9, 0.08, 0.07]))


def test_model_files_check_the_repeated_score_fraction():
    import pytest

    from densepose.errors import UserError
    from densepose.modeling import tiny_config
    from densepose.modeling.model_file import model_config_from_dict

    base = {k: v for k, v in vars(tiny_config()).items()}
    assert tiny_config().repeated_score_fraction == 0.0  # files without the setting drop repeats
    assert model_config_from_dict({**base, "repeated_score_fraction": 0.3}, "f").repeated_score_fraction == 0.3
    with pytest.raises(UserError, match="repeated_score_fraction"):
        model_config_from_dict({**base, "repeated_score_fraction": 1.5}, "f")


def test_wider_boxes_keep_people_of_one_size_and_the_more_confident_box():
    side_by_side = _boxes([0, 0, 10, 30], [5, 0, 15, 30])  # IoU 0.33, one size: two people
    assert not wider_boxes(side_by_side, torch.tensor([0.9, 0.8]), 0.3).any()
    boxes = _boxes([0, 0, 10, 30], [0, 0, 18, 30])
    assert not wider_boxes(boxes, torch.tensor([0.7, 0.9]), 0.3).any()  # the wide box is the surer one
    assert not wider_boxes(boxes, torch.tensor([0.4, 0.3]), 0.3).any()  # the small one is below 0.5
    assert wider_boxes(boxes, torch.tensor([0.4, 0.3]), 0.3, cover_score=0.4).tolist() == [False, True]
    far = _boxes([0, 0, 10, 30], [0, 0, 40, 30])  # 4x the area, IoU 0.25: under 0.3
    assert not wider_boxes(far, torch.tensor([0.9, 0.8]), 0.3).any()
    assert wider_boxes(torch.zeros(0, 4), torch.zeros(0), 0.3).shape == (0,)


def test_model_files_check_the_wider_iou():
    import pytest

    from densepose.errors import UserError
    from densepose.modeling import tiny_config
    from densepose.modeling.model_file import model_config_from_dict

    base = {k: v for k, v in vars(tiny_config()).items()}
    assert model_config_from_dict({**base, "drop_wider_iou": 0.3}, "f").drop_wider_iou == 0.3
    with pytest.raises(UserError, match="drop_wider_iou"):
        model_config_from_dict({**base, "drop_wider_iou": -0.1}, "f")


def test_the_rule_traces_for_any_number_of_boxes():
    """The exported graph drops covered and wider boxes like the eager model: the count is not baked in."""
    def rule(boxes, scores):
        return repeated_boxes(boxes, scores, 0.9, 0.3)

    boxes = _boxes([0, 0, 10, 30], [10, 0, 20, 30], [5, 0, 15, 30], [100, 0, 110, 30], [100, 0, 118, 30])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95, 0.6])
    traced = torch.jit.trace(rule, (boxes, scores))
    for b, s in [(boxes, scores), (boxes[:3], scores[:3]), (boxes[:0], scores[:0]), (boxes[2:], scores[2:])]:
        assert torch.equal(traced(b, s), rule(b, s))
    assert traced(boxes[:3], scores[:3]).tolist() == [False, False, True]
    assert traced(boxes[2:], scores[2:]).tolist() == [False, False, True]
