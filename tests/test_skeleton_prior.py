"""MoveNet's keypoints on a person's crop (densepose.modeling.movenet) and the skeleton prior they
give the charts (densepose.modeling.skeleton_prior, engine.skeleton_prior_fit), carried by a model file."""
from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from densepose.cache import atomic_write_bytes
from densepose.cli.main import main
from densepose.errors import UserError
from densepose.io.tfjs_graph import read_tfjs_graph
from densepose.modeling import DensePoseRCNN
from densepose.modeling.facing_people import PeopleFacing, load_movenet_trunk
from densepose.modeling.model_file import load_model_file
from densepose.modeling.movenet import (
    FPN_TAPS,
    MoveNetKeypoints,
    convert_movenet_keypoint_weights,
    decode_keypoints,
    keypoints_in_image,
)
from densepose.modeling.skeleton_prior import (
    BINS_PER_BONE,
    BONES,
    NO_BONE,
    SKELETON_BINS,
    Skeleton,
    bone_bins,
    skeleton_log_ratio,
    skeleton_log_weight,
)
from densepose.modeling.skeleton_uv import (
    MIN_UV_COUNT,
    UV_ALONG,
    UV_BINS,
    UV_BINS_PER_BONE,
    UV_NO_BONE,
    blend_uv,
    uv_bins,
    uv_stats,
    uv_sums,
)
from densepose.synth.writer import encode_dense
from facing_data import facing_config
from movenet_graphs import make_movenet_graph, write_tfjs

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("movenet_check", REPO / "benchmarks" / "movenet_check.py")
movenet_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(movenet_check)

LEFT_THIGH, RIGHT_THIGH = BONES.index((11, 13)), BONES.index((12, 14))
UPPER_LEG_LEFT, UPPER_LEG_RIGHT = 10, 9  # charts (part index I) of the left and right thigh's front


@pytest.fixture(scope="module")
def lightning_graph(tmp_path_factory) -> Path:
    return write_tfjs(tmp_path_factory.mktemp("lightning"), *make_movenet_graph(1.0, heads=True))


def _keypoint_net(graph_json: Path) -> tuple[PeopleFacing, MoveNetKeypoints]:
    people = PeopleFacing(1)
    load_movenet_trunk(people, graph_json)
    net = MoveNetKeypoints()
    net.load_state_dict(convert_movenet_keypoint_weights(read_tfjs_graph(graph_json)))
    return people.eval(), net.eval()


def test_converted_keypoint_network_gives_the_graphs_own_head_maps(lightning_graph):
    """The graph run op by op with TF's semantics (benchmarks/movenet_check.py, written apart from
    the module) and our network on the converted weights give the same four head maps."""
    people, net = _keypoint_net(lightning_graph)
    pixels = torch.rand(1, 3, 256, 128, generator=torch.Generator().manual_seed(0)) * 255
    runner = movenet_check.GraphRunner(read_tfjs_graph(lightning_graph))
    runner.feed((pixels - 127.5) / 127.5)
    theirs = [runner.run(runner.head_output(h)) for h in ("kpt_heatmap_0", "center_0", "kpt_regress_0", "kpt_offset_0")]
    with torch.no_grad():
        ours = net.maps(people.taps((pixels - 127.0) / 128.0, FPN_TAPS))
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.shape[-2:] == (64, 32)
        torch.testing.assert_close(a, b, atol=2e-3 * float(b.abs().max()), rtol=1e-3)


def test_a_graph_without_the_keypoint_heads_is_a_one_line_error(tmp_path):
    graph = read_tfjs_graph(write_tfjs(tmp_path, *make_movenet_graph(1.0)))
    with pytest.raises(UserError, match="not MoveNet Lightning's single-pose graph .*missing"):
        convert_movenet_keypoint_weights(graph)


def test_decoding_takes_the_peak_that_the_centres_regression_points_at():
    """Two peaks of the left wrist's heat map; the regression from the person's centre points at the
    weaker one, which wins, as in MoveNet's graph; the offset moves it within its cell."""
    h, w = 16, 8
    heat = torch.full((1, 17, h, w), -10.0)
    heat[0, 9, 2, 1], heat[0, 9, 12, 6] = 3.0, 2.0
    center = torch.full((1, 1, h, w), -10.0)
    center[0, 0, 8, 4] = 5.0
    regress = torch.zeros(1, 34, h, w)
    regress[0, 18, 8, 4], regress[0, 19, 8, 4] = 4.0, 2.0  # keypoint 9: (dy, dx) = (4, 2) -> cell (12, 6)
    offset = torch.zeros(1, 34, h, w)
    offset[0, 18, 12, 6], offset[0, 19, 12, 6] = 0.5, -0.25
    x, y, score = decode_keypoints(heat, center, regress, offset)[0, 9]
    assert (float(x), float(y)) == pytest.approx(((6 - 0.25) * 4, (12 + 0.5) * 4))
    assert float(score) == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())


def test_keypoints_in_crop_pixels_land_in_the_image():
    crop_box = torch.tensor([[10.0, 20.0, 60.0, 120.0]])  # 50 x 100 cut at 256 x 128
    kp = torch.tensor([[[64.0, 128.0, 0.75]]])
    assert keypoints_in_image(kp, crop_box, (256, 128)).tolist() == [[[35.0, 70.0, 0.75]]]


def _standing(score: float = 0.9) -> torch.Tensor:
    """(1, 17, 3) keypoints of a person facing the camera: their left on the image's right."""
    xy = {0: (50, 10), 1: (52, 8), 2: (48, 8), 3: (54, 9), 4: (46, 9), 5: (60, 25), 6: (40, 25), 7: (64, 45),
          8: (36, 45), 9: (66, 62), 10: (34, 62), 11: (56, 60), 12: (44, 60), 13: (57, 80), 14: (43, 80),
          15: (57, 98), 16: (43, 98)}
    return torch.tensor([[[*xy[k], score] for k in range(17)]], dtype=torch.float32)


def test_bone_bins_file_each_pixel_by_the_nearest_seen_bone():
    points = torch.tensor([[[56.0, 70.0], [44.0, 70.0], [57.0, 103.0], [200.0, 70.0]]])
    bins = bone_bins(points, _standing(), torch.tensor([100.0]))[0]
    assert bins[0] // BINS_PER_BONE == LEFT_THIGH and bins[1] // BINS_PER_BONE == RIGHT_THIGH
    assert bins[2] // BINS_PER_BONE == BONES.index((13, 15)) and (bins[2] % BINS_PER_BONE) // 4 == 3  # past the ankle
    assert bins[3] % 4 == 3  # far from every bone
    unseen = _standing(score=0.1)
    assert (bone_bins(points, unseen, torch.tensor([100.0])) == NO_BONE).all()


def test_the_prior_moves_a_thigh_the_head_cannot_place_to_the_side_the_keypoints_say():
    counts = torch.ones(SKELETON_BINS, 25)
    counts[:, 0] = 0
    for bone, chart in ((LEFT_THIGH, UPPER_LEG_LEFT), (RIGHT_THIGH, UPPER_LEG_RIGHT)):
        counts[bone * BINS_PER_BONE: (bone + 1) * BINS_PER_BONE, chart] += 1000
    log_ratio = skeleton_log_ratio(counts)
    assert log_ratio[NO_BONE].abs().max() == 0 and log_ratio[:, 0].abs().max() == 0
    weight = skeleton_log_weight(Skeleton(_standing(), torch.tensor([100.0]), torch.tensor([[0.0, 0.0, 100.0, 100.0]])),
                                 100, log_ratio)
    assert weight.shape == (1, 24, 100, 100)
    # On the left thigh (image right, x 56, y 70) the left leg's chart gains, the right leg's loses.
    at_left = weight[0, :, 70, 56]
    assert at_left[UPPER_LEG_LEFT - 1] > 0.5 and at_left[UPPER_LEG_RIGHT - 1] < 0
    at_right = weight[0, :, 70, 44]
    assert at_right[UPPER_LEG_RIGHT - 1] > 0.5 and at_right[UPPER_LEG_LEFT - 1] < 0


def _skeleton_model(**overrides) -> DensePoseRCNN:
    torch.manual_seed(0)
    model = DensePoseRCNN(facing_config(facing_people_members=1, skeleton_prior_on=True, **overrides)).eval()
    model.skeleton_log_ratio.copy_(torch.randn(SKELETON_BINS, 25).clamp(-4, 4))
    if model.cfg.skeleton_uv_on:
        stats = torch.cat([torch.rand(UV_BINS, 25, 2), torch.rand(UV_BINS, 25, 2) * 200], -1)
        model.skeleton_uv_stats.copy_(stats)
    return model


def test_the_model_adds_the_priors_log_weight_to_the_rulers_and_the_facings():
    from densepose.modeling.facing import weigh_charts

    model = _skeleton_model(skeleton_prior_power=1.5)
    coarse, fine = torch.randn(1, 2, 20, 20), torch.randn(1, 25, 20, 20)
    skeleton = Skeleton(_standing(), torch.tensor([100.0]), torch.tensor([[0.0, 0.0, 100.0, 100.0]]))
    p_camera = torch.tensor([0.8])
    without = model.settle_charts(coarse, fine, p_camera)
    expected = weigh_charts(without, skeleton_log_weight(skeleton, 20, model.skeleton_log_ratio, 1.5))
    torch.testing.assert_close(model.settle_charts(coarse, fine, p_camera, skeleton), expected, atol=1e-4, rtol=1e-4)


def test_a_skeleton_prior_needs_the_people_heads_trunk():
    with pytest.raises(ValueError, match="skeleton_prior_on needs the people heads"):
        DensePoseRCNN(facing_config(skeleton_prior_on=True))


def test_the_model_and_its_export_graph_weigh_by_movenets_keypoints_alike():
    from densepose.engine.export_graph import ExportPipeline, labels_uv

    model = _skeleton_model(skeleton_uv_on=True)
    image = (torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    with torch.no_grad():
        eager = model([image.float()])[0]
        pipeline = ExportPipeline(model)
        out = dict(zip(pipeline.output_names, pipeline(image)))
        plain_model = _skeleton_model(skeleton_uv_on=True)
        plain_model.cfg = replace(plain_model.cfg, skeleton_prior_on=False, skeleton_uv_on=False)
        plain = plain_model([image.float()])[0]
    assert len(eager["boxes"]) and not torch.allclose(eager["fine_segm"], plain["fine_segm"])
    assert not torch.allclose(eager["u"], plain["u"]) and not torch.allclose(eager["v"], plain["v"])
    torch.testing.assert_close(out["boxes"], eager["boxes"], atol=1e-4, rtol=1e-4)
    labels, u, v = labels_uv(eager["coarse_segm"], eager["fine_segm"], eager["u"], eager["v"])
    assert torch.equal(out["labels"], labels)
    torch.testing.assert_close(out["u"], u, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["v"], v, atol=1e-4, rtol=1e-4)


def test_uv_bins_step_along_the_bone_and_tell_its_sides_apart():
    # The left thigh runs from the left hip (56, 60) to the left knee (57, 80).
    # The left lower arm from the elbow (64, 45) to the wrist (66, 62); the hand lies past it.
    points = torch.tensor([[[55.0, 62.0], [57.0, 62.0], [55.0, 78.0], [67.0, 70.0], [200.0, 70.0]]])
    bins = uv_bins(points, _standing(), torch.tensor([100.0]))[0]
    assert (bins[:3] // UV_BINS_PER_BONE == LEFT_THIGH).all()
    assert bins[3] // UV_BINS_PER_BONE == BONES.index((7, 9))
    sides = 2 * 4  # left / right, each with the distance bins
    along = (bins[:4] % UV_BINS_PER_BONE) // sides
    assert along.tolist() == [1, 1, UV_ALONG, UV_ALONG + 1]  # first step, first step, last step, past the wrist
    assert bins[1] - bins[0] == -4  # the same step and distance, the bone's other side
    assert bins[4] % 4 == 3  # far from every bone
    assert (uv_bins(points, _standing(score=0.1), torch.tensor([100.0])) == UV_NO_BONE).all()


def test_uv_stats_are_the_truths_means_and_precisions_where_enough_was_counted():
    u = torch.linspace(0.2, 0.4, 100)
    bins = torch.cat([torch.full((100,), 7), torch.full((MIN_UV_COUNT - 1,), 8), torch.full((50,), UV_NO_BONE)])
    charts = torch.cat([torch.full((100,), 5), torch.full((MIN_UV_COUNT - 1,), 5), torch.full((50,), 5)])
    uu = torch.cat([u, torch.full((MIN_UV_COUNT - 1,), 0.5), torch.full((50,), 0.5)])
    stats = uv_stats(uv_sums(bins, charts, uu, 1 - uu))
    assert stats.shape == (UV_BINS, 25, 4)
    torch.testing.assert_close(stats[7, 5, :2], torch.tensor([0.3, 0.7]))
    torch.testing.assert_close(stats[7, 5, 2:], 1 / u.var(unbiased=False).repeat(2), rtol=1e-4, atol=0)
    assert stats[8, 5, 2:].abs().sum() == 0 and stats[UV_NO_BONE, :, 2:].abs().sum() == 0  # too few; no bone
    assert stats[:, 0, 2:].abs().sum() == 0


def test_blend_uv_moves_each_chart_by_the_inverse_variance_weight():
    stats = torch.zeros(UV_BINS, 25, 4)
    box = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    left_thigh = uv_bins(torch.tensor([[[56.5, 70.5]]]), _standing(), torch.tensor([100.0]))[0, 0]
    stats[left_thigh, UPPER_LEG_LEFT] = torch.tensor([0.9, 0.1, 100.0, 25.0])
    u, v = torch.full((1, 25, 100, 100), 0.3), torch.full((1, 25, 100, 100), 0.6)
    new_u, new_v = blend_uv(u, v, Skeleton(_standing(), torch.tensor([100.0]), box), stats, 0.02)
    # weights 2 / (1 + 2) and 0.5 / (1 + 0.5): the map's pixel (70, 56) is at (56.5, 70.5)
    assert new_u[0, UPPER_LEG_LEFT, 70, 56].item() == pytest.approx(0.3 + 2 / 3 * 0.6)
    assert new_v[0, UPPER_LEG_LEFT, 70, 56].item() == pytest.approx(0.6 - 1 / 3 * 0.5)
    changed = (new_u != u) | (new_v != v)
    assert changed[0, UPPER_LEG_LEFT].any() and not changed[0, :UPPER_LEG_LEFT].any()
    assert not changed[0, UPPER_LEG_LEFT + 1:].any()


def test_uv_from_the_skeleton_needs_the_skeleton_prior():
    with pytest.raises(ValueError, match="skeleton_uv_on needs skeleton_prior_on"):
        DensePoseRCNN(facing_config(facing_people_members=1, skeleton_uv_on=True))


def _synth_folder(root: Path) -> Path:
    """One 96 x 64 render with one person (box [16, 8, 32, 80] xywh), head, torso and legs in its dense truth."""
    (root / "images").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 255, (96, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "images" / "00000000.png")
    instance, part = np.zeros((96, 64), np.uint8), np.zeros((96, 64), np.uint8)
    instance[8:88, 16:48] = 1
    part[8:20, 16:48], part[20:50, 16:48], part[50:88, 16:32], part[50:88, 32:48] = 23, 2, 9, 10
    u, v = np.full(part.shape, 0.25, np.float32), np.full(part.shape, 0.75, np.float32)
    atomic_write_bytes(root / "dense" / "00000000.npz", encode_dense(instance, part, u, v))
    (root / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "00000000.png", "height": 96, "width": 64}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [16, 8, 32, 80]}],
        "categories": [{"id": 1, "name": "person"}]}))
    return root


def _add_skeleton_prior_args(tmp_path: Path, graph: Path, people_members: int = 1,
                             with_trunk: bool = False) -> list[str]:
    """``add-skeleton-prior`` of a model file with ``people_members`` people heads (MoveNet's trunk
    loaded into them ``with_trunk``) on the one render of `_synth_folder`, written to s.pt."""
    torch.manual_seed(0)
    model = DensePoseRCNN(facing_config(facing_people_members=people_members))
    if with_trunk:
        load_movenet_trunk(model.facing.people, graph)
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), "meta": {}}, tmp_path / "m.pt")
    data = _synth_folder(tmp_path / "synth")
    return ["add-skeleton-prior", str(tmp_path / "m.pt"), "--movenet", str(graph), "--data", str(data),
            "--out", str(tmp_path / "s.pt")]


def test_add_skeleton_prior_writes_a_model_file_with_movenet_and_the_counts(tmp_path, capsys, lightning_graph):
    args = _add_skeleton_prior_args(tmp_path, lightning_graph, with_trunk=True)
    assert main([*args, "--power", "0.8"]) == 0
    assert "skeleton prior from 2560 pixels, power 0.8, U, V means with head variance 0.02" in capsys.readouterr().out
    loaded = load_model_file(tmp_path / "s.pt")
    assert loaded.cfg.skeleton_prior_on and loaded.cfg.skeleton_prior_power == 0.8
    assert loaded.cfg.skeleton_uv_on and loaded.cfg.skeleton_uv_variance == 0.02
    counted = loaded.skeleton_uv_stats[..., 2] > 0
    assert counted.any() and (loaded.skeleton_uv_stats[..., 0][counted] == 0.25).all()
    assert (loaded.skeleton_uv_stats[..., 1][counted] == 0.75).all()
    _, net = _keypoint_net(lightning_graph)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.keypoints.state_dict()[key], value)
    assert loaded.skeleton_log_ratio.abs().sum() > 0
    stored = torch.load(tmp_path / "s.pt", weights_only=True)["model"]
    assert stored["keypoints.top.weight"].dtype == torch.float16  # MoveNet's float16 weights, stored as they came
    with torch.no_grad():
        out = loaded([torch.rand(3, 64, 80) * 255])[0]
    assert out["fine_segm"].shape[1] == 25


def test_add_skeleton_prior_refuses_a_model_without_people_heads(tmp_path, capsys, lightning_graph):
    assert main(_add_skeleton_prior_args(tmp_path, lightning_graph, people_members=0)) == 2
    assert "needs a model with people heads on MoveNet's trunk" in capsys.readouterr().err
    assert not (tmp_path / "s.pt").exists()


def test_add_skeleton_prior_names_a_missing_render(tmp_path, capsys, lightning_graph):
    args = _add_skeleton_prior_args(tmp_path, lightning_graph)
    (tmp_path / "synth" / "images" / "00000000.png").unlink()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "00000000.npz: its render" in err and "00000000.* is missing" in err
    assert not (tmp_path / "s.pt").exists()


def test_add_skeleton_prior_without_uv_and_a_variance_out_of_range(tmp_path, capsys, lightning_graph):
    args = _add_skeleton_prior_args(tmp_path, lightning_graph)
    assert main([*args, "--uv-variance", "2"]) == 2
    assert "--uv-variance must be between 0 and 1" in capsys.readouterr().err
    assert main([*args, "--uv-variance", "0"]) == 0
    loaded = load_model_file(tmp_path / "s.pt")
    assert loaded.cfg.skeleton_prior_on and not loaded.cfg.skeleton_uv_on
    assert not hasattr(loaded, "skeleton_uv_stats")
