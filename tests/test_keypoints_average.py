"""`densepose average-keypoints`: a trained keypoint network averaged with the one it started from."""
from __future__ import annotations

import torch
from test_keypoints_train import _folder, _model_file

from densepose.cli.main import main
from densepose.modeling.model_file import load_model_file


def _trained(tmp_path, data, *extra: str):
    source = _model_file(tmp_path / "m.pt")
    trained = tmp_path / "k.pt"
    assert main(["train-keypoints", str(source), "--data", str(data), "--prior-data", str(data), "--out", str(trained),
                 "--iterations", "3", "--batch", "3", *extra]) == 0
    return source, trained


def test_average_keypoints_writes_the_mean_network_and_counts_the_prior_with_it(tmp_path, capsys):
    data = _folder(tmp_path / "synth", ids=(1, 2, 3, 10))
    source, trained = _trained(tmp_path, data)
    out = tmp_path / "a.pt"
    assert main(["average-keypoints", str(source), str(trained), "--prior-data", str(data), "--out", str(out),
                 "--weight", "0.25"]) == 0
    assert "skeleton prior from 10240 pixels" in capsys.readouterr().out
    start, end, averaged = load_model_file(source), load_model_file(trained), load_model_file(out)
    changed = 0
    for name, value in averaged.keypoints.state_dict().items():
        a, b = start.keypoints.state_dict()[name], end.keypoints.state_dict()[name]
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.25 * a + 0.75 * b)
        changed += int(not torch.equal(a, b))
    assert changed  # training moved the network, so the mean is neither file's
    torch.testing.assert_close(averaged.facing.people.stem.conv.weight, end.facing.people.stem.conv.weight)
    assert not torch.equal(averaged.skeleton_log_ratio, end.skeleton_log_ratio)  # counted again with the mean
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["keypoints"]["averaged_with"] == {"file": str(source), "weight": 0.25}
    assert meta["keypoints"]["iterations"] == 3  # the training run's record is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "k.pt", "m.pt", "synth"]  # nothing half-made


def test_average_keypoints_refuses_networks_of_different_layers_and_weights_outside_0_1(tmp_path, capsys):
    data = _folder(tmp_path / "synth", ids=(1, 2, 3, 10))
    source, trained = _trained(tmp_path, data, "--own-trunk", "3")  # the trained file has its own trunk blocks
    out = tmp_path / "a.pt"
    args = ["--prior-data", str(data), "--out", str(out)]
    assert main(["average-keypoints", str(source), str(trained), *args]) == 2
    assert "different layers" in capsys.readouterr().err
    assert main(["average-keypoints", str(trained), str(trained), *args, "--weight", "1"]) == 2
    assert "between 0 and 1, got 1.0" in capsys.readouterr().err
    plain = _model_file(tmp_path / "plain.pt", skeleton=False)
    assert main(["average-keypoints", str(plain), str(trained), *args]) == 2
    assert "no keypoint network" in capsys.readouterr().err
    assert not out.exists()


def test_average_keypoints_measures_the_averaged_network_on_the_held_out_people(tmp_path, capsys):
    from densepose.engine.keypoints_train import held_out_split, keypoint_accuracy, read_keypoint_people

    data = _folder(tmp_path / "synth", ids=(1, 2, 3, 10))
    source, trained = _trained(tmp_path, data, "--iterations", "60", "--lr", "0.005")
    out = tmp_path / "a.pt"
    assert main(["average-keypoints", str(source), str(trained), "--prior-data", str(data), "--out", str(out),
                 "--data", str(data), "--half", "--weight", "0.25"]) == 0
    assert "held out (1 people), averaged: within 5 %" in capsys.readouterr().out
    record = torch.load(out, weights_only=True)["meta"]["keypoints"]
    averaged = load_model_file(out)  # the network as the file stores it
    _, test = held_out_split(read_keypoint_people([data]))
    with torch.no_grad():
        expected = keypoint_accuracy(averaged.facing.people, averaged.keypoints, test)
    assert record["held_out_averaged"] == {k: round(v, 4) for k, v in expected.items()}
    trained_record = torch.load(trained, weights_only=True)["meta"]["keypoints"]
    assert record["held_out_after"] == trained_record["held_out_after"]  # the training run's, as it was
    assert record["held_out_averaged"] != record["held_out_after"]  # the two networks place the joints differently
