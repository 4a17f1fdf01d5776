"""The head ruler: chart priors by height below the top of the head (densepose.modeling.head_ruler),
counted from dense render truth (densepose.engine.head_ruler_fit) and carried by a model file."""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch

from densepose.cli.main import main
from densepose.engine.export_graph import ExportPipeline, labels_uv
from densepose.engine.head_ruler_fit import count_ruler_charts, person_counts
from densepose.cache import atomic_write_bytes
from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.head_ruler import (
    FIRST_BIN_BELOW_TOP,
    RULER_BINS,
    apply_head_ruler,
    head_extent,
    head_ruler_log_weight,
    ruler_bins,
    ruler_log_ratio,
)
from densepose.modeling.model_file import load_model_file
from densepose.synth.writer import encode_dense

TORSO, UPPER_LEG, HEAD = 2, 7, 23


def _table(rows: dict[float, int]) -> torch.Tensor:
    """Counts where height d (head heights below the top) holds only the given chart; others spread evenly."""
    counts = torch.ones(RULER_BINS, 25)
    counts[:, 0] = 0
    for d, chart in rows.items():
        counts[ruler_bins(torch.tensor(d)), chart] += 10_000
    return counts


def _person_maps(size: int = 40, head_rows: tuple[int, int] = (4, 12)):
    """(1, 2, S, S) foreground everywhere, (1, 25, S, S) head charts on ``head_rows`` and below them
    torso and upper leg tied (a head that cannot tell a shoulder from a thigh)."""
    coarse = torch.zeros(1, 2, size, size)
    coarse[:, 1] = 5.0
    fine = torch.zeros(1, 25, size, size)
    fine[0, HEAD, head_rows[0]:head_rows[1]] = 6.0
    fine[0, TORSO, head_rows[1]:] = 3.0
    fine[0, UPPER_LEG, head_rows[1]:] = 3.0
    return coarse, fine


def test_ruler_bins_are_the_quarter_head_edges_from_minus_one_to_eight():
    edges = torch.arange(-1.0, 8.01, 0.25)
    d = torch.cat([torch.rand(1000) * 12 - 2, edges, torch.tensor([-5.0, 100.0])])
    assert torch.equal(ruler_bins(d), torch.bucketize(d, edges, right=True))
    assert ruler_bins(torch.tensor([-0.01, 0.0])).tolist() == [FIRST_BIN_BELOW_TOP - 1, FIRST_BIN_BELOW_TOP]


def test_log_ratio_favours_the_charts_counted_at_each_height():
    ratio = ruler_log_ratio(_table({1.5: TORSO, 3.5: UPPER_LEG, -0.5: HEAD}))
    assert ratio.shape == (RULER_BINS, 25) and ratio.dtype == torch.float32
    at_chest, at_thigh = ruler_bins(torch.tensor(1.5)), ruler_bins(torch.tensor(3.5))
    assert ratio[at_chest, TORSO] > 1 and ratio[at_chest, UPPER_LEG] < 0
    assert ratio[at_thigh, UPPER_LEG] > 1 and ratio[at_thigh, TORSO] < 0
    assert ratio.abs().max() <= 4.0
    assert (ratio[:, 0] == 0).all() and (ratio[:FIRST_BIN_BELOW_TOP] == 0).all()  # above the head: no prior
    with pytest.raises(ValueError, match="shape"):
        ruler_log_ratio(torch.ones(10, 25))


def test_head_extent_reads_the_head_rows_of_the_map():
    coarse, fine = _person_maps(head_rows=(4, 12))
    top, height, seen = head_extent(coarse, fine, min_head=0.01)
    assert top.tolist() == [4] and height.tolist() == [8.0] and seen.tolist() == [True]


def test_rows_below_the_head_take_the_chart_the_ruler_expects():
    coarse, fine = _person_maps(size=40, head_rows=(4, 12))  # head height 8: the chest at 12..24, thighs from 28
    ratio = ruler_log_ratio(_table({d / 8: TORSO for d in range(8, 20)} | {d / 8: UPPER_LEG for d in range(24, 36)}))
    out = apply_head_ruler(coarse, fine, ratio, power=1.0)
    chart = out[0, 1:].argmax(0) + 1
    assert (chart[13:20] == TORSO).all() and (chart[29:36] == UPPER_LEG).all()
    assert (chart[4:12] == HEAD).all()
    # The charts' total against the background is unchanged: the silhouette stays.
    torch.testing.assert_close(out.softmax(1)[:, 0], fine.softmax(1)[:, 0])
    assert torch.equal(apply_head_ruler(coarse, fine, ratio, power=2.0)[0, 1:].argmax(0), chart - 1)


@pytest.mark.parametrize("head_rows", [(0, 8), (10, 11)], ids=["cut-by-the-top", "too-small"])
def test_no_prior_where_the_head_is_not_seen(head_rows):
    coarse, fine = _person_maps(size=40, head_rows=head_rows)
    ratio = ruler_log_ratio(_table({1.5: TORSO, 3.5: UPPER_LEG}))
    assert torch.equal(apply_head_ruler(coarse, fine, ratio, min_head=0.05), fine)


def test_counts_from_dense_truth_skip_heads_cut_by_the_image_top():
    instance, part = np.zeros((60, 20), np.int32), np.zeros((60, 20), np.uint8)
    instance[10:50, 2:8], part[10:20, 2:8], part[20:40, 2:8], part[40:50, 2:8] = 1, HEAD, TORSO, UPPER_LEG
    instance[0:30, 12:18], part[0:10, 12:18], part[10:30, 12:18] = 2, HEAD, TORSO  # head cut: not counted
    counts = person_counts(instance, part)
    expected = np.zeros((RULER_BINS, 25), np.int64)
    for row in range(10, 50):  # head top 10, height 10
        expected[ruler_bins(torch.tensor((row - 10) / 10)), part[row, 2]] += 6
    assert np.array_equal(counts, expected)
    assert counts[:, TORSO].sum() == 120 and counts[ruler_bins(torch.tensor(3.0)), UPPER_LEG] == 18


def _synth_folder(root, images: int = 2):
    instance, part = np.zeros((64, 32), np.int32), np.zeros((64, 32), np.uint8)
    instance[8:60, 10:22], part[8:18, 10:22], part[18:40, 10:22], part[40:60, 10:22] = 1, HEAD, TORSO, UPPER_LEG
    zeros = np.zeros(part.shape, np.float32)
    for i in range(images):
        atomic_write_bytes(root / "dense" / f"{i:08d}.npz", encode_dense(instance, part, zeros, zeros))
    return root


def _tiny_model_file(path):
    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(backbone_width=8, fpn_channels=16, dp_decoder_conv_dim=16, dp_decoder_channels=16,
                                      dp_dim=32, box_fc_dim=32, min_size_test=64, max_size=128))
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), "meta": {}}, path)
    return model


def test_add_head_ruler_writes_a_model_file_that_loads_and_predicts(tmp_path, capsys):
    _tiny_model_file(tmp_path / "m.pt")
    data = _synth_folder(tmp_path / "synth")
    assert main(["add-head-ruler", str(tmp_path / "m.pt"), "--data", str(data), "--out", str(tmp_path / "r.pt"),
                 "--power", "1.5"]) == 0
    assert "head ruler from 1248 pixels, power 1.5" in capsys.readouterr().out
    model = load_model_file(tmp_path / "r.pt")
    assert model.cfg.head_ruler_on and model.cfg.head_ruler_power == 1.5
    torch.testing.assert_close(model.head_ruler_log_ratio,
                               ruler_log_ratio(torch.from_numpy(count_ruler_charts([data], log=lambda _: None))))
    with torch.no_grad():
        out = model.eval()([torch.rand(3, 64, 80) * 255])[0]
    assert out["fine_segm"].shape[1] == 25


def test_add_head_ruler_refuses_folders_without_dense_truth_and_bad_powers(tmp_path, capsys):
    _tiny_model_file(tmp_path / "m.pt")
    assert main(["add-head-ruler", str(tmp_path / "m.pt"), "--data", str(tmp_path), "--out", str(tmp_path / "r.pt")]) == 2
    assert "no dense/*.npz (pass a `densepose synth` output folder)" in capsys.readouterr().err
    data = _synth_folder(tmp_path / "synth", images=1)
    assert main(["add-head-ruler", str(tmp_path / "m.pt"), "--data", str(data), "--out", str(tmp_path / "r.pt"),
                 "--power", "20"]) == 2
    assert "head_ruler_power = 20.0 is out of range" in capsys.readouterr().err
    (tmp_path / "junk" / "dense").mkdir(parents=True)
    (tmp_path / "junk" / "dense" / "00000000.npz").write_bytes(b"not a zip")
    assert main(["add-head-ruler", str(tmp_path / "m.pt"), "--data", str(tmp_path / "junk"), "--out",
                 str(tmp_path / "r.pt")]) == 2
    assert "00000000.npz: not a dense truth file of `densepose synth`" in capsys.readouterr().err
    assert not (tmp_path / "r.pt").exists()


def test_add_head_ruler_names_a_detectron2_file_as_such(tmp_path, capsys, detectron2_legacy_file):
    data = _synth_folder(tmp_path / "synth", images=1)
    assert main(["add-head-ruler", str(detectron2_legacy_file), "--data", str(data), "--out",
                 str(tmp_path / "r.pt")]) == 2
    assert "a detectron2 model file; the head ruler is added to this toolkit's model files" in capsys.readouterr().err


def test_model_weighs_the_charts_by_ruler_and_facing_in_one_pass_as_one_after_the_other():
    from densepose.modeling.facing import RATIO_COLUMNS, reweight_charts

    torch.manual_seed(0)
    model = DensePoseRCNN(replace(tiny_config(), head_ruler_on=True, head_ruler_power=1.5, facing_on=True,
                                  facing_power=2.0)).eval()
    model.head_ruler_log_ratio.copy_(torch.randn(RULER_BINS, 25).clamp(-4, 4))
    model.facing_chart_ratio.copy_(torch.rand(2, RATIO_COLUMNS, 25) * 2 + 0.1)
    coarse, fine = _person_maps(size=40, head_rows=(4, 12))
    coarse, fine = coarse.repeat(3, 1, 1, 1), fine.repeat(3, 1, 1, 1) + torch.randn(3, 25, 40, 40)
    p_camera = torch.tensor([0.9, 0.5, 0.1])
    ruled = apply_head_ruler(coarse, fine, model.head_ruler_log_ratio, 1.5)
    assert not torch.allclose(ruled, fine)
    torch.testing.assert_close(model.settle_charts(coarse, fine, p_camera),
                               reweight_charts(ruled, p_camera, model.facing_chart_ratio, 2.0))
    torch.testing.assert_close(model.settle_charts(coarse, fine, None), ruled)


def test_exported_pipeline_applies_the_ruler_as_the_eager_model(monkeypatch):
    import densepose.modeling.second_look as second_look

    # A random model's head is small: measure the ruler from any head it finds.
    monkeypatch.setattr(second_look, "head_ruler_log_weight", partial(head_ruler_log_weight, min_head=0.0))
    torch.manual_seed(0)
    cfg = tiny_config(score_thresh_test=0.0, backbone_width=8, fpn_channels=16, dp_decoder_conv_dim=16,
                      dp_decoder_channels=16, dp_dim=32, box_fc_dim=32, min_size_test=64, max_size=128,
                      rpn_pre_nms_topk_test=100, rpn_post_nms_topk_test=30, detections_per_image=4)
    model = DensePoseRCNN(replace(cfg, head_ruler_on=True, head_ruler_power=2.0)).eval()
    model.head_ruler_log_ratio.copy_(torch.randn(RULER_BINS, 25).clamp(-4, 4))
    image = (torch.rand(3, 60, 80, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    pipeline = ExportPipeline(model)
    with torch.no_grad():
        got = dict(zip(pipeline.output_names, pipeline(image)))
        eager = model([image.float()])[0]
        model.cfg.head_ruler_on = False
        plain = model([image.float()])[0]
    assert len(eager["boxes"]) > 0 and not torch.equal(eager["fine_segm"], plain["fine_segm"])
    # The graph's labels are those of the eager model's ruled charts at the head's size.
    want, _, _ = labels_uv(eager["coarse_segm"], eager["fine_segm"], eager["u"], eager["v"])
    assert torch.equal(got["labels"].long(), want.long())
