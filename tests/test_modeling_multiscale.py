"""Testing at several sizes: detections of every size merged by NMS, and the config that asks for it."""
import pytest
import torch

from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.model_file import model_config_from_dict
from densepose.modeling.multiscale import gather_merged, select_across_sizes
from densepose.modeling.roi_heads import Detected


def merge_scales(per_size, iou_threshold, max_detections):
    """Complete outputs of one image at several sizes merged as the model merges its boxes."""
    rows, order = select_across_sizes([o["boxes"] for o in per_size], [o["scores"] for o in per_size],
                                      iou_threshold, max_detections)
    return gather_merged([{key: value[r] for key, value in o.items()} for o, r in zip(per_size, rows)], order)


def _outputs(boxes, scores, tag):
    n = len(scores)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "scores": torch.tensor(scores),
            "u": torch.full((n, 2, 3, 3), float(tag))}


def test_merge_keeps_the_best_box_of_each_overlapping_group():
    large = _outputs([[0, 0, 100, 200], [300, 0, 340, 80]], [0.6, 0.9], tag=1)
    small = _outputs([[2, 0, 100, 196], [150, 150, 180, 200]], [0.8, 0.7], tag=2)
    merged = merge_scales([large, small], iou_threshold=0.5, max_detections=10)
    assert merged["scores"].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert merged["boxes"][1].tolist() == [2, 0, 100, 196]  # the better of the two boxes of one person
    assert merged["u"][:, 0, 0, 0].tolist() == [1.0, 2.0, 2.0]  # every output follows its box
    assert merge_scales([large, small], 0.5, max_detections=2)["scores"].shape == (2,)
    empty = _outputs([], [], tag=0)
    assert merge_scales([empty, empty], 0.5, 10)["boxes"].shape == (0, 4)


def _model_with_an_extra_size():
    """A random tiny model that tests at its min_size_test and at 96, keeping every score."""
    torch.manual_seed(0)
    cfg = tiny_config(score_thresh_test=0.0, detections_per_image=30, extra_test_sizes=(96,))
    return cfg, DensePoseRCNN(cfg).eval()


def test_model_with_an_extra_test_size_merges_both_sizes():
    cfg, model = _model_with_an_extra_size()
    image = torch.rand(3, 120, 160) * 255
    with torch.no_grad():
        both = model([image])[0]
        first = model([image], min_size=cfg.min_size_test)[0]
        second = model([image], min_size=96)[0]
    found = [{key: out[key] for key in ("boxes", "scores")} for out in (first, second)]
    want = merge_scales(found, cfg.nms_thresh_test, cfg.detections_per_image)
    assert both.keys() == first.keys()
    for key in want:
        torch.testing.assert_close(both[key], want[key])
    # Detections of the second size are among the merged ones: the two sizes did not give the same boxes.
    assert not torch.equal(first["boxes"], second["boxes"])
    assert any(torch.isclose(second["boxes"], b).all(1).any() for b in both["boxes"])
    # Every detection is labelled on the largest size's features: one found there has its
    # single-size outputs, one found at 96 does not have those of its own size.
    from_first = from_second = 0
    for k, box in enumerate(both["boxes"]):
        same = torch.isclose(first["boxes"], box).all(1).nonzero()[:, 0]
        if len(same):
            from_first += 1
            for key in ("coarse_segm", "fine_segm", "u", "v"):
                torch.testing.assert_close(both[key][k], first[key][same[0]], atol=1e-4, rtol=1e-4)
        else:
            from_second += 1
            other = torch.isclose(second["boxes"], box).all(1).nonzero()[0, 0]
            assert not torch.allclose(both["u"][k], second["u"][other], atol=1e-3)
    assert from_first and from_second


def test_the_dense_heads_read_the_largest_size_only():
    """Several sizes find people; the DensePose decoder runs once, on the largest size's features."""
    cfg, model = _model_with_an_extra_size()
    image = torch.rand(3, 120, 160) * 255
    widths = []
    model.dp_decoder.register_forward_hook(lambda mod, inp, out: widths.append(inp[0][0].shape[-1]))
    with torch.no_grad():
        model([image], min_size=cfg.min_size_test)
        largest = list(widths)
        widths.clear()
        out = model([image], min_size=(96, cfg.min_size_test))[0]
    assert len(out["scores"]) and widths == largest


def test_model_files_check_extra_test_sizes():
    base = tiny_config().to_dict()
    assert model_config_from_dict({**base, "extra_test_sizes": []}, "f").extra_test_sizes == ()
    assert model_config_from_dict({**base, "extra_test_sizes": [256]}, "f").extra_test_sizes == (256,)
    with pytest.raises(UserError, match="extra_test_sizes"):
        model_config_from_dict({**base, "extra_test_sizes": [0]}, "f")
    with pytest.raises(UserError, match="extra_test_sizes"):
        model_config_from_dict({**base, "extra_test_sizes": [10**9]}, "f")


def test_export_says_that_the_graph_tests_at_one_size(tmp_path, caplog):
    from densepose.engine.export_graph import export_graph

    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(extra_test_sizes=(96,), backbone_width=8, fpn_channels=16)).eval()
    with caplog.at_level("WARNING"):
        export_graph(model, tmp_path / "m.ts", "torchscript", example=torch.rand(3, 80, 100) * 255)
    assert "extra test sizes [96]" in caplog.text and (tmp_path / "m.ts").is_file()


def test_select_across_sizes_gives_rows_and_order():
    boxes = [torch.tensor([[0.0, 0, 100, 200], [300, 0, 340, 80]]), torch.tensor([[2.0, 0, 100, 196], [150, 150, 180, 200]])]
    scores = [torch.tensor([0.6, 0.9]), torch.tensor([0.8, 0.7])]
    rows, order = select_across_sizes(boxes, scores, 0.5, 10)
    assert [r.tolist() for r in rows] == [[1], [0, 1]]
    kept_scores = torch.cat([s[r] for s, r in zip(scores, rows)])[order]
    assert kept_scores.tolist() == pytest.approx([0.9, 0.8, 0.7])


def test_heads_run_only_on_the_detections_kept_across_sizes():
    """The merge needs boxes and scores only: the DensePose head never sees a box the merge drops."""
    cfg, model = _model_with_an_extra_size()
    images = [torch.rand(3, 120, 160) * 255, torch.rand(3, 100, 90) * 255]
    seen = []
    model.dp_head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    with torch.no_grad():
        both = model(images)
        merged_call = sum(seen)
        per_size = sum(len(model(images, min_size=s)[i]["scores"]) for s in (cfg.min_size_test, 96) for i in range(2))
    kept = sum(len(out["scores"]) for out in both)
    assert merged_call == kept < per_size


def test_explicit_sizes_are_tested_and_merged_like_the_configs():
    cfg, model = _model_with_an_extra_size()
    image = torch.rand(3, 120, 160) * 255
    with torch.no_grad():
        default = model([image])[0]
        explicit = model([image], min_size=(cfg.min_size_test, 96))[0]
        three = model([image], min_size=[cfg.min_size_test, 96, 64])[0]
        single = model([image], min_size=64)[0]
    for key in default:
        torch.testing.assert_close(explicit[key], default[key])
    assert len(three["scores"]) >= len(default["scores"]) and three.keys() == default.keys()
    assert any(torch.isclose(single["boxes"], b).all(1).any() for b in three["boxes"])


def test_predictor_takes_several_sizes_and_refuses_bad_ones():
    from densepose.predict.predictor import Predictor, parse_test_sizes

    assert parse_test_sizes(None) is None and parse_test_sizes(384) == 384 and parse_test_sizes([384]) == 384
    assert parse_test_sizes((512, 384, 256)) == (512, 384, 256)
    for bad in (0, -3, [], [384, 0], 2.5, [True]):
        with pytest.raises(UserError, match="test sizes must be positive integers"):
            parse_test_sizes(bad)
    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(score_thresh_test=0.0)).eval()
    predictor = Predictor(model, min_score=0.0, min_size=(96, 64), precision="fp32")
    image = (torch.rand(120, 160, 3) * 255).to(torch.uint8).numpy()
    merged = predictor(image)
    alone = [Predictor(model, min_score=0.0, min_size=s, precision="fp32")(image) for s in (96, 64)]
    assert len(merged) <= len(alone[0]) + len(alone[1]) and len(merged) >= max(len(a) for a in alone) > 0

    class OneSizeModel(torch.nn.Module):
        def forward(self, images, *, min_size=None, max_size=None, score_thresh=None):
            return []

    with pytest.raises(UserError, match="OneSizeModel tests at one size"):
        Predictor(OneSizeModel(), min_size=(512, 256))


def test_each_size_keeps_the_heights_it_sees_best():
    from densepose.modeling.multiscale import within_size_range

    boxes = torch.tensor([[0.0, 0, 10, 20], [0, 0, 10, 100], [0, 0, 10, 300]])  # 20, 100, 300 tall
    assert within_size_range(boxes, 512, [512, 256], 32, 192).tolist() == [True, True, False]
    assert within_size_range(boxes, 256, [512, 256], 32, 192).tolist() == [False, True, True]
    assert within_size_range(boxes, 384, [512, 384, 256], 32, 192).tolist() == [False, True, False]
    assert within_size_range(boxes, 512, [512], 32, 192).all()  # one size: everything
    assert within_size_range(boxes, 512, [512, 256], 0, 0).all()  # no bounds


def test_the_model_applies_the_height_ranges_before_merging(monkeypatch):
    """At 128 and 64, with every detection 100 input pixels tall: 100 at 128 passes (max 120), at
    64 it is 50 tall and passes (min 40); lowering the max drops the 128 pass's boxes, raising the
    min the 64 pass's, and testing at one size ignores the ranges."""
    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(score_thresh_test=0.0, extra_test_sizes=(64,))).eval()
    box = torch.tensor([[10.0, 10, 50, 110]])  # input pixels (the test image is 128 x 128)

    def detect(batch, feats, score_thresh):  # the 128 pass scores 0.9, the 64 pass 0.8
        return [Detected(box * sy, torch.tensor([0.9 if sy == 1 else 0.8]), box * sy) for sy, _ in batch.scales]

    monkeypatch.setattr(model, "_detect", detect)
    image = torch.rand(3, 128, 128) * 255

    def scores(min_height, max_height, **kw):
        model.cfg.multisize_min_height, model.cfg.multisize_max_height = min_height, max_height
        with torch.no_grad():
            return model([image], **kw)[0]["scores"].tolist()

    assert scores(40, 120) == pytest.approx([0.9])  # both pass; the merge keeps the better
    assert scores(40, 90) == pytest.approx([0.8])  # too tall for 128: the 64 pass's box
    assert scores(60, 90) == []  # too tall for 128, too short for 64
    assert scores(60, 90, min_size=128) == pytest.approx([0.9])  # one size: no ranges
