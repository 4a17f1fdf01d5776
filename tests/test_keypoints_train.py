"""Training a model file's MoveNet keypoint network on the renders' true keypoints
(densepose.engine.keypoints_train)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from densepose.cache import atomic_write_bytes
from densepose.cli.main import main
from densepose.data.coco import KEYPOINT_FLIP
from densepose.engine.keypoints_train import (
    KeypointPeople,
    keypoint_losses,
    people_crops,
    read_keypoint_people,
)
from densepose.modeling import DensePoseRCNN
from densepose.modeling.facing import crop_boxes
from densepose.modeling.facing_people import PEOPLE_CROP
from densepose.modeling.model_file import load_model_file
from densepose.modeling.movenet import FPN_TAPS, keypoints_in_crop, keypoints_in_image
from densepose.synth.writer import encode_dense
from facing_data import facing_config

H, W = PEOPLE_CROP
#: A standing person's 17 keypoints in a 96 x 64 image, inside the box [16, 8, 32, 80] (xywh).
KEYPOINTS = np.array([[32, 14], [34, 12], [30, 12], [36, 13], [28, 13], [40, 24], [24, 24], [42, 36], [22, 36],
                      [43, 46], [21, 46], [37, 50], [27, 50], [37, 66], [27, 66], [37, 82], [27, 82]], np.float32)


def _people(keypoints: np.ndarray, files: list[Path] | None = None) -> KeypointPeople:
    n = len(keypoints)
    return KeypointPeople(files or [], np.tile(np.array([[16, 8, 48, 88]], np.float32), (n, 1)), keypoints,
                          np.zeros(n, np.int64), np.arange(1, n + 1))


def _with_visibility(xy: np.ndarray, v: float = 2.0) -> np.ndarray:
    return np.concatenate([xy, np.full((len(xy), 1), v, np.float32)], 1)


def test_keypoints_in_crop_undo_keypoints_in_image():
    boxes = torch.tensor([[16.0, 8.0, 48.0, 88.0], [100.0, 40.0, 180.0, 90.0]])
    crop = torch.rand(2, 17, 3) * torch.tensor([W, H, 1.0])
    image = keypoints_in_image(crop, crop_boxes(boxes), PEOPLE_CROP)
    torch.testing.assert_close(keypoints_in_crop(image, crop_boxes(boxes), PEOPLE_CROP), crop, atol=1e-4, rtol=0)


def _folder(root: Path, ids=(1,)) -> Path:
    """Renders of one person each (the same pixels), with their keypoints and dense truth."""
    (root / "images").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 255, (96, 64, 3), dtype=np.uint8)
    instance, part = np.zeros((96, 64), np.uint8), np.zeros((96, 64), np.uint8)
    instance[8:88, 16:48] = 1
    part[8:20, 16:48], part[20:50, 16:48], part[50:88, 16:32], part[50:88, 32:48] = 23, 2, 9, 10
    uv = np.full(part.shape, 0.5, np.float32)
    images, annotations = [], []
    for i in ids:
        name = f"{i:08d}.png"
        Image.fromarray(pixels).save(root / "images" / name)
        atomic_write_bytes(root / "dense" / f"{i:08d}.npz", encode_dense(instance, part, uv, uv))
        images.append({"id": i, "file_name": name, "height": 96, "width": 64})
        annotations.append({"id": i, "image_id": i, "category_id": 1, "bbox": [16, 8, 32, 80],
                            "keypoints": _with_visibility(KEYPOINTS).ravel().tolist()})
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                       "categories": [{"id": 1, "name": "person"}]}))
    return root


def test_a_mirrored_crop_carries_its_keypoints_mirrored_with_left_and_right_swapped(tmp_path):
    people = read_keypoint_people([_folder(tmp_path / "synth")])
    crops, truth = people_crops(people, people.boxes)
    mirrored, swapped = people_crops(people, people.boxes, mirror=np.array([True]))
    torch.testing.assert_close(mirrored, crops.flip(-1))
    left_wrist, right_wrist = 9, 10
    assert KEYPOINT_FLIP[left_wrist] == right_wrist
    torch.testing.assert_close(swapped[0, right_wrist, 0], W - truth[0, left_wrist, 0])
    torch.testing.assert_close(swapped[0, right_wrist, 1], truth[0, left_wrist, 1])
    # the crop's pixels at a keypoint are the image's there: the keypoints follow the crop
    assert truth[0, left_wrist, 0] > W / 2  # the left wrist lies on the image's right (a person facing the camera)


def _maps_peaked_at(truth: torch.Tensor, shift: float = 0.0) -> tuple[torch.Tensor, ...]:
    """MoveNet-shaped maps whose heat maps peak at ``truth`` (crop pixels) moved ``shift`` cells right."""
    h, w = H // 4, W // 4
    rows, cols = torch.arange(h).float()[:, None], torch.arange(w).float()[None]
    gy, gx = truth[..., 1] / 4, truth[..., 0] / 4 + shift
    d2 = (rows - gy[..., None, None]) ** 2 + (cols - gx[..., None, None]) ** 2
    heat = 8 * torch.exp(-d2 / 4.5) - 4
    n = len(truth)
    return heat, torch.zeros(n, 1, h, w), torch.zeros(n, 34, h, w), torch.zeros(n, 34, h, w)


def test_the_heat_map_loss_is_lowest_at_the_true_keypoints_and_ignores_unlabelled_ones():
    truth = keypoints_in_crop(torch.from_numpy(_with_visibility(KEYPOINTS))[None],
                              crop_boxes(torch.tensor([[16.0, 8, 48, 88]])), PEOPLE_CROP)
    right = keypoint_losses(_maps_peaked_at(truth), truth)["heatmap"]
    wrong = keypoint_losses(_maps_peaked_at(truth, shift=3.0), truth)["heatmap"]
    assert right < 0.5 * wrong
    unlabelled = truth.clone()
    unlabelled[0, 9, 2] = 0  # the left wrist not labelled: where the maps put it does not count
    moved = _maps_peaked_at(truth)
    moved[0][0, 9] = _maps_peaked_at(truth, shift=5.0)[0][0, 9]
    torch.testing.assert_close(keypoint_losses(moved, unlabelled)["heatmap"] * 16 / 17,
                               keypoint_losses(_maps_peaked_at(truth), unlabelled)["heatmap"] * 16 / 17)
    assert keypoint_losses(moved, truth)["heatmap"] > keypoint_losses(_maps_peaked_at(truth), truth)["heatmap"]


def test_the_losses_lead_the_keypoint_network_to_the_true_keypoints(tmp_path):
    torch.manual_seed(0)
    model = DensePoseRCNN(facing_config(facing_people_members=1, skeleton_prior_on=True)).eval()
    people = read_keypoint_people([_folder(tmp_path / "synth")])
    crops, truth = people_crops(people, people.boxes)
    taps = model.facing.people.taps(crops, FPN_TAPS)
    net = model.keypoints.requires_grad_(True)
    with torch.no_grad():  # random heat maps start near 0.1, as CenterNet starts its own (MoveNet's weights do)
        for head in (net.heatmap, net.center):
            head[1].weight.mul_(0.01)
            head[1].bias.fill_(-2.19)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)

    def error() -> float:
        with torch.no_grad():
            return float((net(taps)[..., :2] - truth[..., :2]).norm(dim=-1).mean())

    start = error()
    for _ in range(60):
        loss = sum(keypoint_losses(net.maps(taps), truth).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert error() < 0.5 * start, (start, error())


def _model_file(path: Path, skeleton: bool = True) -> Path:
    torch.manual_seed(0)
    cfg = facing_config(facing_people_members=1, skeleton_prior_on=skeleton)
    model = DensePoseRCNN(cfg)
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), "meta": {}}, path)
    return path


def test_train_keypoints_trains_the_keypoint_network_alone_and_counts_the_prior_with_it(tmp_path, capsys):
    data = _folder(tmp_path / "synth", ids=(1, 2, 3, 10))  # id 10 held out: the same person as the others
    source = _model_file(tmp_path / "m.pt")
    out = tmp_path / "k.pt"
    assert main(["train-keypoints", str(source), "--data", str(data), "--prior-data", str(data), "--out", str(out),
                 "--iterations", "5", "--batch", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3 people to train on, 1 held out" in printed and "skeleton prior from 10240 pixels" in printed
    meta = torch.load(out, weights_only=True)["meta"]
    assert set(meta["keypoints"]["held_out_after"]) == {"pck5", "pck10", "swapped"}
    loaded, old = load_model_file(out), load_model_file(source)
    assert loaded.cfg.skeleton_prior_on
    assert not torch.equal(loaded.keypoints.heatmap[1].weight, old.keypoints.heatmap[1].weight)
    torch.testing.assert_close(loaded.facing.people.stem.conv.weight, old.facing.people.stem.conv.weight)  # trunk fixed
    assert meta["skeleton_prior"]["keypoints_from"] == "the model file"
    assert not torch.equal(loaded.skeleton_log_ratio, old.skeleton_log_ratio)  # counted again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pt", "m.pt", "synth"]  # no file left half-made


def test_train_keypoints_with_its_own_trunk_trains_a_copy_and_leaves_the_facing_heads_trunk(tmp_path, capsys):
    data = _folder(tmp_path / "synth", ids=(1, 2, 3, 10))
    source = _model_file(tmp_path / "m.pt")
    out = tmp_path / "k.pt"
    assert main(["train-keypoints", str(source), "--data", str(data), "--prior-data", str(data), "--out", str(out),
                 "--iterations", "5", "--batch", "3", "--own-trunk"]) == 0
    loaded, old = load_model_file(out), load_model_file(source)
    assert loaded.cfg.skeleton_own_trunk and len(loaded.keypoints.trunk) == 7  # blocks 6..12
    assert torch.load(out, weights_only=True)["meta"]["keypoints"]["own_trunk_from"] == 6
    for index in (6, 12):  # the copy trained, the trunk the facing heads read unchanged
        own, shared = loaded.keypoints.trunk[index - 6], loaded.facing.people.blocks[index]
        assert not torch.equal(own.project.conv.weight, shared.project.conv.weight)
        torch.testing.assert_close(shared.project.conv.weight, old.facing.people.blocks[index].project.conv.weight)
    # Trained on from the written file, the copy is the file's own, not the trunk again.
    again = tmp_path / "k2.pt"
    assert main(["train-keypoints", str(out), "--data", str(data), "--prior-data", str(data), "--out", str(again),
                 "--iterations", "1", "--batch", "3", "--lr", "1e-9", "--own-trunk"]) == 0
    torch.testing.assert_close(load_model_file(again).keypoints.trunk[6].project.conv.weight,
                               loaded.keypoints.trunk[6].project.conv.weight, rtol=0, atol=1e-6)


@pytest.mark.parametrize("first", [3, 6])
def test_an_own_trunk_copied_from_the_people_trunk_gives_the_same_keypoints(tmp_path, first):
    from densepose.engine.keypoints_train import with_own_keypoint_trunk
    from densepose.modeling.model_file import build_model, read_model_file

    source = read_model_file(_model_file(tmp_path / "m.pt"))
    plain, own = build_model(source), build_model(with_own_keypoint_trunk(source, first))
    assert len(own.keypoints.trunk) == 13 - first
    crops = torch.randn(2, 3, H, W, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(_keypoint_maps(own, crops), _keypoint_maps(plain, crops))
        own.keypoints.trunk[0].project.conv.weight.mul_(0.5)  # and it is what the keypoints read
        assert not torch.allclose(_keypoint_maps(own, crops), _keypoint_maps(plain, crops))


def test_an_own_trunk_started_earlier_keeps_the_files_trained_blocks(tmp_path):
    from densepose.engine.keypoints_train import with_own_keypoint_trunk
    from densepose.modeling.model_file import build_model, read_model_file

    source = read_model_file(_model_file(tmp_path / "m.pt"))
    from6 = with_own_keypoint_trunk(source, 6)
    trained = {k: v * 0.9 if k.startswith("keypoints.trunk.") and v.is_floating_point() else v
               for k, v in from6.weights.items()}  # as if trained: no longer the people trunk's
    from6 = replace(from6, weights=trained)
    from3 = with_own_keypoint_trunk(from6, 3)
    assert from3.config.skeleton_own_trunk_from == 3
    assert with_own_keypoint_trunk(from3, 6).config.skeleton_own_trunk_from == 3  # never shortened
    model6, model3 = build_model(from6), build_model(from3)
    assert len(model3.keypoints.trunk) == 10
    weight = lambda block: block.project.conv.weight  # noqa: E731
    torch.testing.assert_close(weight(model3.keypoints.trunk[3]), weight(model6.keypoints.trunk[0]))  # the file's 6
    torch.testing.assert_close(weight(model3.keypoints.trunk[0]), weight(model3.facing.people.blocks[3]))  # a copy
    crops = torch.randn(2, 3, H, W, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(_keypoint_maps(model3, crops), _keypoint_maps(model6, crops))


def test_an_own_trunk_starts_just_after_a_tap():
    from densepose.cli.keypoints import OWN_TRUNK_STARTS as cli_starts
    from densepose.modeling.movenet import OWN_TRUNK_STARTS, MoveNetKeypoints

    assert cli_starts == OWN_TRUNK_STARTS == (3, 6)
    with pytest.raises(ValueError, match="starts at block 3 or 6, not 4"):
        MoveNetKeypoints(own_trunk_from=4)


def _keypoint_maps(model, crops):
    """The keypoint network's four maps (heat maps, centre, regression, offsets) on ``crops``, all in one."""
    return torch.cat([m.flatten(1) for m in model.keypoints.maps(model.facing.people.taps(crops, FPN_TAPS))], 1)


def test_train_keypoints_leaves_no_model_file_when_the_prior_cannot_be_counted(tmp_path, capsys):
    data = _folder(tmp_path / "synth", ids=(1, 2, 3, 10))
    args = ["--data", str(data), "--prior-data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "k.pt")]
    model = str(_model_file(tmp_path / "m.pt"))
    assert main(["train-keypoints", model, *args, "--iterations", "1", "--batch", "2"]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "synth"]


def test_train_keypoints_needs_a_keypoint_network_and_enough_people(tmp_path, capsys):
    data = _folder(tmp_path / "synth", ids=(1, 10))
    args = ["--data", str(data), "--prior-data", str(data), "--out", str(tmp_path / "k.pt")]
    assert main(["train-keypoints", str(_model_file(tmp_path / "plain.pt", skeleton=False)), *args]) == 2
    assert "no keypoint network to train" in capsys.readouterr().err
    assert main(["train-keypoints", str(_model_file(tmp_path / "m.pt")), *args, "--batch", "4"]) == 2
    assert "1 people to train on and 1 held out" in capsys.readouterr().err
    assert not (tmp_path / "k.pt").exists()


def test_add_skeleton_prior_without_movenet_uses_the_files_own_keypoint_network(tmp_path, capsys):
    data = _folder(tmp_path / "synth")
    assert main(["add-skeleton-prior", str(_model_file(tmp_path / "plain.pt", skeleton=False)), "--data", str(data),
                 "--out", str(tmp_path / "s.pt")]) == 2
    assert "no keypoint network of its own; give MoveNet Lightning's graph (--movenet)" in capsys.readouterr().err
    source = _model_file(tmp_path / "m.pt")
    assert main(["add-skeleton-prior", str(source), "--data", str(data), "--out", str(tmp_path / "s.pt")]) == 0
    loaded, old = load_model_file(tmp_path / "s.pt"), load_model_file(source)
    for key, value in old.keypoints.state_dict().items():
        torch.testing.assert_close(loaded.keypoints.state_dict()[key], value)


def test_the_bundled_keypoints_place_the_joints_of_new_renders(tmp_path):
    """The bundled file's keypoint network, trained on renders (MODELS.md, "Keypoints trained on the
    renders"), on 30 renders of a seed never trained on, cut at jittered boxes: within 10 % of the
    crop height for 0.881 of the labelled joints with the shared assets and 0.913 without them
    (procedural garments and skies, a clone without ../shared): 30 renders vary by a few points,
    on 3,170 held-out people it gains (0.889 -> 0.901). Its own blocks from block 6 only (commit
    69d5b1f's file): 0.899 and 0.899; without its own trunk blocks: 0.868 and 0.874; trained 2,000
    steps on one render folder: 0.835 and 0.848; MoveNet Lightning's own weights: 0.768 and 0.773."""
    from densepose.api import bundled_model_path
    from densepose.engine.keypoints_train import keypoint_accuracy
    from densepose.modeling.model_file import build_model, read_model_file
    from held_out_renders import render_held_out

    data = render_held_out(tmp_path / "synth", 30, 77003)
    model = build_model(read_model_file(bundled_model_path())).eval()
    accuracy = keypoint_accuracy(model.facing.people, model.keypoints, read_keypoint_people([data]))
    assert accuracy["pck10"] >= 0.875, accuracy


def test_train_keypoints_half_counts_the_prior_with_the_float16_weights_the_file_holds(tmp_path, capsys):
    """The prior is counted again from the file's own keypoints: the same tables, to the bit."""
    data = _folder(tmp_path / "synth", ids=(1, 2, 3, 10))
    out, again = tmp_path / "k.pt", tmp_path / "again.pt"
    assert main(["train-keypoints", str(_model_file(tmp_path / "m.pt")), "--data", str(data), "--prior-data",
                 str(data), "--out", str(out), "--iterations", "5", "--batch", "3", "--lr", "0.02", "--half"]) == 0
    assert main(["add-skeleton-prior", str(out), "--data", str(data), "--out", str(again), "--half"]) == 0
    written, recounted = torch.load(out, weights_only=True)["model"], torch.load(again, weights_only=True)["model"]
    assert torch.equal(written["skeleton_log_ratio"], recounted["skeleton_log_ratio"])
