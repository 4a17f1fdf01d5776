"""detectron2's chart predictor with optional confidence outputs (``DensePoseChartWithConfidencePredictor``).

Every output is ``ConvTranspose2d(k4, s2, p1)`` followed by bilinear x2 (``align_corners=False``):
R x R head features -> 4R x 4R maps (28 -> 112 by default, 14 -> 56 for ``*_legacy`` models).

* ``coarse_segm`` (K, 2 or 15, 4R, 4R), ``fine_segm``/``u``/``v`` (K, 25, 4R, 4R): our
  `DensePosePredictor`, with the coarse layer widened to 15 channels for legacy models.
* WC1 (``iid_iso``): ``sigma_2`` (K, 25, ...). WC2 (``indep_aniso``): ``sigma_2``, ``kappa_u``,
  ``kappa_v``. They are the raw layer outputs, exactly what detectron2 returns at inference (its
  loss turns ``sigma_2`` into a variance with ``softplus(.) + 0.01``).
* WC1M / WC2M (segmentation confidence): ``fine_segm_confidence`` and ``coarse_segm_confidence``
  (K, 1, ...) = ``softplus(.) + 0.01``; ``fine_segm`` and ``coarse_segm`` are multiplied by them.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from densepose.modeling.densepose_head import NUM_PATCHES, DensePosePredictor

#: UV confidence types -> their extra 25-channel outputs.
UV_CONFIDENCE_OUTPUTS = {"iid_iso": ("sigma_2",), "indep_aniso": ("sigma_2", "kappa_u", "kappa_v")}
SEGM_CONFIDENCE_OUTPUTS = ("fine_segm_confidence", "coarse_segm_confidence")
#: Added to softplus of the segmentation confidences (detectron2's SEGM_CONFIDENCE.EPSILON).
CONFIDENCE_EPSILON = 0.01


def _deconv(dim: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(dim, cout, 4, 2, 1)


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ChartPredictor(DensePosePredictor):
    """(K, dim, R, R) -> dict of maps at 4R x 4R (see the module docstring for the keys)."""

    def __init__(self, dim: int, coarse_channels: int = 2, uv_confidence: str | None = None,
                 segm_confidence: bool = False):
        super().__init__(dim)
        if coarse_channels != 2:
            self.ann_index_lowres = _deconv(dim, coarse_channels)
        self.coarse_channels = coarse_channels
        self.uv_outputs = UV_CONFIDENCE_OUTPUTS[uv_confidence] if uv_confidence else ()
        for name in self.uv_outputs:
            setattr(self, f"{name}_lowres", _deconv(dim, NUM_PATCHES + 1))
        self.segm_confidence = segm_confidence
        if segm_confidence:
            for name in SEGM_CONFIDENCE_OUTPUTS:
                setattr(self, f"{name}_lowres", _deconv(dim, 1))

    def output_channels(self) -> dict[str, int]:
        """Name -> channel count of every output map (for empty outputs)."""
        out = {"coarse_segm": self.coarse_channels, "fine_segm": NUM_PATCHES + 1, "u": NUM_PATCHES + 1,
               "v": NUM_PATCHES + 1}
        out.update({name: NUM_PATCHES + 1 for name in self.uv_outputs})
        if self.segm_confidence:
            out.update({name: 1 for name in SEGM_CONFIDENCE_OUTPUTS})
        return out

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = super().forward(x)
        for name in self.uv_outputs:
            out[name] = _up(getattr(self, f"{name}_lowres")(x))
        if self.segm_confidence:
            for name, key in zip(SEGM_CONFIDENCE_OUTPUTS, ("fine_segm", "coarse_segm")):
                conf = F.softplus(_up(getattr(self, f"{name}_lowres")(x))) + CONFIDENCE_EPSILON
                out[name] = conf
                out[key] = out[key] * conf
        return out
