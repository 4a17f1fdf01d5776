"""Pose families: proper rotations, and joints bending the anatomical way."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from densepose.synth.poses import REALISTIC_FAMILIES, pose_tensor, sample_pose


@pytest.fixture(scope="module")
def model():
    from densepose.surface.anny import load_anny_model

    return load_anny_model()


def _joints(model, rotations):
    with torch.no_grad():
        out = model(pose_parameters=pose_tensor(model, [rotations]))
    heads = out["bone_poses"][0, :, :3, 3].numpy()
    return {name: heads[i] for i, name in enumerate(model.bone_labels)}


@pytest.mark.parametrize("family", REALISTIC_FAMILIES)
def test_families_give_proper_rotations(model, family):
    rng = np.random.default_rng(0)
    for _ in range(3):
        name, rots = sample_pose(model, rng, family)
        assert name == family
        for R in rots.values():
            assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1.0)


def test_sitting_bends_hips_forward_and_knees_back(model):
    _, rots = sample_pose(model, np.random.default_rng(1), "sitting")
    j = _joints(model, rots)
    for s in ("L", "R"):
        hip, knee, ankle = j[f"upperleg01.{s}"], j[f"lowerleg01.{s}"], j[f"foot.{s}"]
        assert knee[1] < hip[1] - 0.2  # thigh points forward (-Y) ...
        assert ankle[2] < knee[2] - 0.2  # ... and the shin hangs down


def test_arms_raised_lifts_a_hand_above_the_head(model):
    _, rots = sample_pose(model, np.random.default_rng(2), "arms_raised")
    j = _joints(model, rots)
    assert max(j["wrist.L"][2], j["wrist.R"][2]) > j["head"][2]


def test_lying_puts_the_body_horizontal(model):
    rng = np.random.default_rng(3)
    for _ in range(3):
        _, rots = sample_pose(model, rng, "lying")
        j = _joints(model, rots)
        axis = j["head"] - j["root"]
        assert abs(axis[2]) < 0.35 * np.linalg.norm(axis)  # pelvis-to-head nearly horizontal


def test_arms_crossed_brings_the_hands_in_front_of_the_trunk(model):
    _, rots = sample_pose(model, np.random.default_rng(4), "arms_crossed")
    j = _joints(model, rots)
    for s in ("L", "R"):
        assert j[f"wrist.{s}"][1] < j["spine03"][1] - 0.1  # in front (-Y) of the chest
        assert abs(j[f"wrist.{s}"][0]) < abs(j[f"upperarm01.{s}"][0])  # nearer the midline than the shoulder


def test_default_families_are_the_plain_ones(model):
    from densepose.synth.poses import FAMILIES

    rng = np.random.default_rng(5)
    assert {sample_pose(model, rng)[0] for _ in range(60)} <= set(FAMILIES)
