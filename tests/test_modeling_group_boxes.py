"""Boxes around two people side by side are dropped; people with smaller detections inside are kept."""
import pytest
import torch

from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.group_boxes import group_boxes
from densepose.modeling.ops.boxes import contained_fraction
from densepose.modeling.roi_heads import Detected


def _boxes(rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def test_a_box_around_two_walkers_is_a_group_box():
    boxes = _boxes([[100, 50, 140, 150], [135, 52, 178, 148], [98, 48, 180, 152]])  # left, right, both
    scores = torch.tensor([0.9, 0.8, 0.95])
    assert group_boxes(boxes, scores).tolist() == [False, False, True]
    # Its members must be confident: a weak second walker does not make it a group.
    assert group_boxes(boxes, torch.tensor([0.9, 0.3, 0.95])).tolist() == [False, False, False]
    # Fewer than three detections: nothing to explain a box by.
    assert group_boxes(boxes[:2], scores[:2]).tolist() == [False, False]


def test_a_person_with_fragments_or_a_smaller_person_inside_is_kept():
    person = [100, 0, 200, 300]
    upper, legs = [105, 0, 195, 140], [110, 150, 190, 300]  # fragments: far shorter than the person
    assert not group_boxes(_boxes([person, upper, legs]), torch.tensor([0.9, 0.8, 0.8])).any()
    # Two full-height members that overlap (one person boxed twice) do not make a group either.
    twice = [[102, 0, 190, 300], [108, 2, 198, 298]]
    assert not group_boxes(_boxes([person, *twice]), torch.tensor([0.9, 0.8, 0.8]))[0]
    # Two narrow side-by-side members that leave most of the box's width uncovered: kept.
    narrow = [[100, 0, 125, 300], [130, 0, 150, 300]]
    assert not group_boxes(_boxes([person, *narrow]), torch.tensor([0.9, 0.8, 0.8]))[0]


def test_contained_fraction():
    a = _boxes([[0, 0, 10, 10], [5, 5, 15, 15]])
    b = _boxes([[0, 0, 10, 10]])
    assert contained_fraction(a, b)[:, 0].tolist() == [1.0, 0.25]


def test_the_model_drops_group_boxes_when_its_config_asks(monkeypatch):
    """Detections fixed to two walkers and their pair box: with the setting the pair box goes, at
    one test size and at two, before the DensePose head runs."""
    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(score_thresh_test=0.0)).eval()
    walkers = _boxes([[20, 10, 40, 90], [38, 12, 60, 88], [18, 8, 62, 92]])  # input pixels

    def detect(batch, feats, score_thresh):  # the same people at every size
        return [Detected(walkers * sy, torch.tensor([0.9, 0.8, 0.95]), walkers * sy) for sy, _ in batch.scales]

    monkeypatch.setattr(model, "_detect", detect)
    image = torch.rand(3, 128, 128) * 255
    with torch.no_grad():
        assert len(model([image])[0]["scores"]) == 3
        model.cfg.drop_group_boxes = True
        one = model([image])[0]
        two = model([image], min_size=(128, 64))[0]
    assert one["scores"].tolist() == pytest.approx([0.9, 0.8]) and one["u"].shape[0] == 2
    torch.testing.assert_close(one["boxes"], walkers[:2])
    assert two["scores"].tolist() == pytest.approx([0.9, 0.8])  # the two sizes' boxes merge
    torch.testing.assert_close(two["boxes"], walkers[:2])
