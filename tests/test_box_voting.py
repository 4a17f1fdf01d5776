"""Box voting at test time (`ops.vote_boxes`, ``box_vote_iou``): the boxes of the people found move to
the score-weighted mean of the boxes around them; which people are found does not change."""
from __future__ import annotations

from dataclasses import replace

import torch

from densepose.engine.export_graph import ExportPipeline
from densepose.modeling import DensePoseRCNN, ModelConfig, tiny_config
from densepose.modeling.ops import vote_boxes
from densepose.modeling.roi_heads import box_inference


def test_a_kept_box_becomes_the_score_weighted_mean_of_the_boxes_it_overlaps():
    kept = torch.tensor([[10.0, 10, 50, 110]])
    boxes = torch.tensor([[10.0, 10, 50, 110], [14, 10, 54, 110], [10, 10, 50, 130], [200, 10, 240, 110]])
    weights = torch.tensor([0.9, 0.3, 0.6, 0.99])
    # IoU with the kept box: 1, 0.82, 0.83 and 0 (the far box does not vote)
    voted = vote_boxes(kept, boxes, weights, 0.7)
    want = (weights[:3, None] * boxes[:3]).sum(0) / weights[:3].sum()
    torch.testing.assert_close(voted[0], want)
    # A higher threshold leaves the kept box to itself.
    torch.testing.assert_close(vote_boxes(kept, boxes, weights, 0.9), kept)
    # No voter at all (zero weights): the box stays as it is.
    torch.testing.assert_close(vote_boxes(kept, boxes, torch.zeros(4), 0.7), kept)
    assert vote_boxes(torch.zeros(0, 4), boxes, weights, 0.7).shape == (0, 4)
    torch.testing.assert_close(vote_boxes(kept, torch.zeros(0, 4), torch.zeros(0), 0.7), kept)


def test_a_box_between_two_people_votes_for_the_one_it_overlaps_most():
    left, right = [0.0, 0, 30, 100], [12.0, 0, 42, 100]  # IoU 0.43: NMS at 0.5 keeps both
    between = [8.0, 0, 38, 100]  # IoU 0.58 with the left one, 0.76 with the right one
    kept = torch.tensor([left, right])
    voted = vote_boxes(kept, torch.tensor([left, right, between]), torch.tensor([0.9, 0.9, 0.9]), 0.5)
    torch.testing.assert_close(voted[0], kept[0])  # the left person is not pulled to the right
    torch.testing.assert_close(voted[1], torch.tensor([10.0, 0, 40, 100]))


def _detections(cfg: ModelConfig, min_score: float | None):
    """Three people's proposals (boxes as proposed: zero deltas) with scores, two near-copies of
    the first, one weak near-copy of the second, and a weak box between two of them."""
    proposals = torch.tensor([[10.0, 10, 50, 110], [12, 8, 52, 112], [8, 12, 48, 114],
                              [100, 20, 140, 120], [103, 20, 143, 122],
                              [200, 10, 240, 110], [60, 10, 100, 110]])
    p = torch.tensor([0.95, 0.7, 0.6, 0.9, 0.04, 0.55, 0.2])
    return box_inference([p], [proposals], cfg, min_score)[0]


def test_voting_moves_the_boxes_of_the_people_found_never_which_are_found():
    plain_cfg = ModelConfig(score_thresh_test=0.05, nms_thresh_test=0.5)
    voted_cfg = replace(plain_cfg, box_vote_iou=0.7)
    plain, voted = _detections(plain_cfg, None), _detections(voted_cfg, None)
    torch.testing.assert_close(voted.boxes, plain.boxes)  # the same rows, as the box head gave them
    torch.testing.assert_close(voted.scores, plain.scores)
    torch.testing.assert_close(plain.refined, plain.boxes)  # no voting: nothing refined
    assert len(voted.boxes) == 4 and not torch.equal(voted.refined[0], voted.boxes[0])
    # The second person's weak copy scores under score_thresh_test: it does not vote.
    torch.testing.assert_close(voted.refined[1], voted.boxes[1])
    # Asked for people from 0.5 or from 0.0, the people kept at both get the same boxes: the
    # voters are those over score_thresh_test, whatever the threshold asked.
    high, low = _detections(voted_cfg, 0.5), _detections(voted_cfg, 0.0)
    assert len(high.boxes) == 3 and len(low.boxes) == 4
    torch.testing.assert_close(low.refined[:3], high.refined)


def test_the_exported_graph_votes_as_the_eager_model_does():
    torch.manual_seed(0)
    cfg = tiny_config(score_thresh_test=0.0, backbone_width=8, fpn_channels=16, dp_decoder_conv_dim=16,
                      dp_decoder_channels=16, dp_dim=32, box_fc_dim=32, min_size_test=64, max_size=128,
                      rpn_pre_nms_topk_test=100, rpn_post_nms_topk_test=30, detections_per_image=4,
                      box_vote_iou=0.6, drop_group_boxes=True, dp_margin_x=0.1, dp_margin_y=0.05)
    model = DensePoseRCNN(cfg).eval()
    plain = DensePoseRCNN(replace(cfg, box_vote_iou=0.0)).eval()
    plain.load_state_dict(model.state_dict())
    pipeline = ExportPipeline(model)
    image = (torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    with torch.no_grad():
        got = dict(zip(pipeline.output_names, pipeline(image)))
        want, unvoted = model([image.float()])[0], plain([image.float()])[0]
    assert len(want["boxes"]) > 0 and not torch.allclose(want["boxes"], unvoted["boxes"])
    torch.testing.assert_close(got["boxes"], want["boxes"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got["scores"], want["scores"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got["map_boxes"], want["dp_boxes"], atol=1e-4, rtol=1e-4)
