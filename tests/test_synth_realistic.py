"""Realistic synth mode: clothes, hair and props in every scene type, hard negatives, occluders that cut
the ground truth, determinism, image-based lighting from HDR maps, and the CLI's help texts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from densepose.data.rle import DP_MASK_SIZE
from densepose.synth.writer import RunSettings, generate, load_dense


@pytest.fixture(scope="module")
def synth():
    from densepose.synth.scene import SynthConfig, Synthesizer

    return Synthesizer(SynthConfig(height=96, width=96, max_people=3, min_dp_pixels=20, negative_fraction=0.0))


def test_scenes_have_clothes_hair_and_props(synth):
    from densepose.synth.compose import sample_scene
    from densepose.synth.scene import image_rng

    kinds, people, props = set(), 0, 0
    for index in range(6):
        scene = sample_scene(synth, image_rng(1, index))
        people += len(scene.bodies)
        props += scene.cover_owner.count(-1)
        kinds |= {m.kind for m, o in zip(scene.materials, scene.cover_owner) if o >= 0}
        for k in range(len(scene.bodies)):  # every person wears something
            assert k in scene.cover_owner
    assert people >= 6 and props > 0
    assert {"fabric", "hair"} <= kinds


def test_render_is_deterministic_by_seed(synth):
    a, b, c = synth.render(3, 5), synth.render(3, 5), synth.render(4, 5)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.I, b.I) and a.people == b.people
    assert not np.array_equal(a.rgb, c.rgb)


def test_occluder_cuts_the_ground_truth(synth):
    from densepose.synth.compose import render_scene, sample_scene
    from densepose.synth.distractors import box
    from densepose.synth.materials import prop_material
    from densepose.synth.scene import image_rng

    index = next(i for i in range(20) if len(sample_scene(synth, image_rng(7, i)).bodies) > 0)
    scene = sample_scene(synth, image_rng(7, index))
    bare = render_scene(synth, scene, np.random.default_rng(0))
    # A board between the camera and the first person, at 60 % of the way, covering the middle of them.
    target = scene.bodies[0].mean(0)
    spot = scene.camera.C + (target - scene.camera.C) * 0.6
    board = box((0.35, 0.05, 0.5), tuple(spot), np.full((4, 4, 3), 128, np.uint8))
    scene.add_cover(board.vertices, board.faces, -1, prop_material(board))
    cut = render_scene(synth, scene, np.random.default_rng(0))
    hidden = (bare.instance == 1) & (cut.instance == 0)
    assert hidden.sum() > 20, "the board hides part of the person"
    assert np.all(cut.I[hidden] == 0) and np.all(cut.U[hidden] == 0)
    same = cut.instance == bare.instance
    assert np.array_equal(cut.I[same], bare.I[same])  # nothing else changes
    # The person's annotation covers only what is still visible.
    assert cut.people[0]["area"] == (cut.instance == 1).sum() < bare.people[0]["area"]


def _check_dataset(root):
    data = json.loads((root / "annotations.json").read_text())
    by_image = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for img in data["images"]:
        dense = load_dense(root / "dense" / (img["file_name"].rsplit(".", 1)[0] + ".npz"))
        anns = by_image.get(img["id"], [])
        assert dense["instance"].max() == len(anns)
        assert np.all(dense["instance"][dense["I"] > 0] > 0)  # labelled pixels belong to a person
        for k, ann in enumerate(anns, start=1):
            mask = dense["instance"] == k
            assert ann["area"] == mask.sum() > 0
            if "dp_x" in ann:
                x, y, w, h = ann["bbox"]
                px = np.floor(x + np.asarray(ann["dp_x"]) * w / DP_MASK_SIZE).astype(int)
                py = np.floor(y + np.asarray(ann["dp_y"]) * h / DP_MASK_SIZE).astype(int)
                assert np.all(mask[py, px]) and np.all(dense["I"][py, px] > 0)
                assert np.array_equal(dense["I"][py, px], np.asarray(ann["dp_I"]))
    return data


def test_realistic_dataset_is_consistent(tmp_path):
    settings = RunSettings(num=4, size=96, seed=5, max_people=3, min_dp_pixels=20, negatives=0.0)
    generate(tmp_path, settings, photos=[], progress=False)
    data = _check_dataset(tmp_path)
    assert len(data["annotations"]) > 0


def test_hard_negatives_have_no_annotations(tmp_path):
    settings = RunSettings(num=3, size=64, seed=9, min_dp_pixels=20, negatives=1.0)
    generate(tmp_path, settings, photos=[], progress=False)
    data = _check_dataset(tmp_path)
    assert len(data["images"]) == 3 and data["annotations"] == []
    for img in data["images"]:
        dense = load_dense(tmp_path / "dense" / (img["file_name"].rsplit(".", 1)[0] + ".npz"))
        assert not dense["instance"].any() and not dense["I"].any()


def test_hdr_maps_light_the_scene(shared_dir):
    from densepose.synth.hdri import list_hdris, load_hdri
    from densepose.synth.lighting import lighting_from_panorama

    maps = list_hdris(shared_dir / "data" / "hdri")
    assert len(maps) >= 20
    brighter_above = 0
    for path in maps:
        light = lighting_from_panorama(load_hdri(path), 0.0)
        up, down = light.irradiance(np.array([[0, 0, 1.0], [0, 0, -1.0]])).mean(1)
        assert down >= 0 and np.all(light.key_rgb > 0), path
        brighter_above += up > down
        assert np.isclose(np.linalg.norm(light.key_dir), 1) and light.key_dir[2] > 0
    assert brighter_above >= 0.8 * len(maps)  # skies and ceilings above, ground below: the maps are upright


def test_uniform_sky_gives_uniform_irradiance():
    from densepose.synth.lighting import lighting_from_panorama

    light = lighting_from_panorama(np.ones((32, 64, 3), np.float32), 0.3, min_key_fraction=0.0)
    e = light.irradiance(np.eye(3)) + light.key_rgb * np.clip(np.eye(3) @ light.key_dir, 0, None)[:, None]
    assert np.allclose(e, np.pi, rtol=0.03)  # a white sky of radiance 1 gives irradiance pi on any plane


def test_cli_help_texts(capsys):
    import argparse

    from densepose.cli import synth as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["synth"]
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{action.option_strings} has no help text"
    preview = sub._subparsers._group_actions[0].choices["preview"]
    assert all(a.help for a in preview._actions if a.option_strings)
    text = sub.format_help()
    assert "``" not in text and ":func:" not in text and "--plain" in text


def test_people_all_outside_the_frame(synth):
    """People placed but none visible: an empty body buffer next to props renders as a negative."""
    from densepose.synth.compose import render_scene, sample_scene
    from densepose.synth.scene import image_rng

    index = next(i for i in range(20) if len(sample_scene(synth, image_rng(8, i)).bodies) > 0)
    scene = sample_scene(synth, image_rng(8, index))
    scene.bodies = [v + np.array([0.0, -100.0, 0.0]) for v in scene.bodies]  # behind the camera
    scene.cover_v = [v + np.array([0.0, -100.0, 0.0]) if o >= 0 else v
                     for v, o in zip(scene.cover_v, scene.cover_owner)]
    sample = render_scene(synth, scene, np.random.default_rng(0))
    assert sample.people == [] and not sample.instance.any() and not sample.I.any()


def test_same_seed_same_files_with_shared_assets_and_any_worker_count(shared_dir, tmp_path):
    """Byte-identical datasets from one seed: one process vs two workers, HDR maps, photos and
    MakeHuman assets in use (caches warmed in a different order in each process)."""
    from densepose.synth.appearance import list_backgrounds
    from densepose.synth.hdri import list_hdris

    data = shared_dir / "data"
    photos, hdris = list_backgrounds(data / "backgrounds"), list_hdris(data / "hdri")
    settings = RunSettings(num=6, size=96, seed=13, max_people=3, min_dp_pixels=20, crowds=0.3)
    kwargs = dict(photos=photos, hdris=hdris, assets=str(data / "makehuman"), progress=False)
    generate(tmp_path / "one", settings, workers=1, **kwargs)
    generate(tmp_path / "two", settings, workers=2, **kwargs)

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) > 6
    assert [k for k in one if one[k] != two[k]] == []


def test_sitting_people_have_a_seat(synth):
    from densepose.synth.compose import sample_scene
    from densepose.synth.scene import image_rng

    for index in range(60):
        scene = sample_scene(synth, image_rng(4, index))
        sitting = [k for k, info in enumerate(scene.info) if info["family"] == "sitting"]
        if sitting:
            break
    else:
        pytest.skip("no sitting person in 60 scenes")
    body = scene.bodies[sitting[0]]
    bottom = body[synth.seat_ids][:, 2].min()
    tops = [v[:, 2].max() for v, o in zip(scene.cover_v, scene.cover_owner) if o < 0]
    assert any(abs(t - bottom) < 1e-6 for t in tops)  # a prop's top touches the buttocks


def test_portraits_frame_people_from_the_chest_up():
    """--portraits: head-and-shoulders shots, a person cut above the waist, as portrait photos
    frame people and the other kinds of shot seldom do."""
    from densepose.synth.camera import sample_shot
    from densepose.synth.scene import SynthConfig, Synthesizer

    rng = np.random.default_rng(0)
    assert {sample_shot(rng, 96, 96, crowd=False, portrait=True)[1].kind for _ in range(5)} == {"portrait"}
    assert sample_shot(rng, 96, 96, crowd=True, portrait=True)[1].kind == "crowd"

    def cut_above_the_hips(seed: int, portraits: float) -> tuple[int, int]:
        synth = Synthesizer(SynthConfig(height=96, width=96, max_people=1, min_dp_pixels=20, negative_fraction=0.0,
                                        crowd_fraction=0.0, portrait_fraction=portraits))
        people = [p for i in range(12) for p in synth.render(seed, i).people if "dp_x" in p]
        # COCO keypoints 11, 12: the hips; a person whose hips are out of the picture is cut above them.
        cut = sum(1 for p in people if p["keypoints"][11 * 3 + 2] == 0 and p["keypoints"][12 * 3 + 2] == 0)
        return cut, len(people)

    cut, people = cut_above_the_hips(3, 1.0)
    assert people >= 8 and cut >= 0.6 * people
    cut, people = cut_above_the_hips(3, 0.0)
    assert cut <= 0.3 * people


def test_directories_made_before_a_setting_existed_resume(tmp_path):
    from dataclasses import asdict

    from densepose.errors import UserError
    from densepose.synth.writer import check_settings

    settings = RunSettings(num=2, size=64, seed=1)
    recorded = {k: v for k, v in asdict(settings).items() if k != "portraits"}
    (tmp_path / "synth.json").write_text(json.dumps(recorded))
    check_settings(tmp_path, settings)  # no portraits key: made with none
    with pytest.raises(UserError, match="portraits"):
        check_settings(tmp_path, RunSettings(num=2, size=64, seed=1, portraits=0.5))
