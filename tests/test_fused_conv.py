"""A convolution and its ReLU6 as one oneDNN call on the CPU (`densepose.modeling.ops.fused_conv`)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from densepose.modeling.backbone import FrozenBatchNorm2d
from densepose.modeling.efficientnet_lite import ConvBN, EfficientNetLite
from densepose.modeling.ops.fused_conv import compute_dtype, conv2d_clamped, fusion_possible

BF16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _aten_ops(fn) -> set[str]:
    """The names of the operators ``fn()`` runs, as the profiler records them."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {event.key for event in prof.key_averages()}


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(
    not BF16, reason="this CPU has no oneDNN bf16"))])
@pytest.mark.parametrize("shape", [
    # (in, out, kernel, stride, padding, groups, clamp): a 1x1 expansion, a depthwise 3x3, the stride-2
    # depthwise as ConvBN runs it on even sizes (a 4x4 kernel, symmetric padding), a projection without a clamp
    (8, 48, 1, 1, 0, 1, (0.0, 6.0)), (48, 48, 3, 1, 1, 48, (0.0, 6.0)), (48, 48, 4, 2, 1, 48, (0.0, 6.0)),
    (48, 16, 1, 1, 0, 1, None)])
def test_fused_convolution_equals_convolution_then_clamp(precision, shape):
    cin, cout, kernel, stride, padding, groups, clamp = shape
    torch.manual_seed(0)
    x = (torch.randn(2, cin, 20, 30) * 3).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(cout, cin // groups, kernel, kernel), torch.randn(cout)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        assert fusion_possible(x, weight, bias)
        fused = conv2d_clamped(x, weight, bias, (stride, stride), padding, groups, clamp)
        expected = F.conv2d(x, weight, bias, stride, padding, 1, groups)
        expected = expected if clamp is None else F.hardtanh(expected, *clamp)
    assert fused.dtype == expected.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
    assert fused.shape == expected.shape and fused.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fused, expected)  # the clamp commutes with rounding to bf16: exactly the same
    if clamp is not None:
        assert fused.min() == 0 and fused.max() == 6


def test_a_folded_convolution_and_its_relu6_run_as_one_call_in_inference():
    """Inference on the CPU runs each folded ConvBN as one oneDNN call, in fp32 and bf16, with no
    separate ReLU6 pass (in bf16 that pass cost 14 ms per image, a tenth of `predict`); training,
    which needs the ReLU6's gradient, keeps the two ops."""
    torch.manual_seed(0)
    layer = ConvBN(8, 16, 3, 1, FrozenBatchNorm2d(16, 1e-3), act=True).eval()
    x = torch.randn(1, 8, 16, 16).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ops = _aten_ops(lambda: layer(x))
    assert "mkldnn::_convolution_pointwise" in ops and not ops & {"aten::relu6", "aten::hardtanh_", "aten::conv2d"}
    if BF16:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
            ops = _aten_ops(lambda: layer(x))
            assert layer(x).dtype == torch.bfloat16
        assert "mkldnn::_convolution_pointwise" in ops and "aten::hardtanh_" not in ops
    layer.conv.weight.requires_grad_(True)
    ops = _aten_ops(lambda: layer(x).sum().backward())
    assert "aten::conv2d" in ops and "mkldnn::_convolution_pointwise" not in ops
    assert layer.conv.weight.grad.abs().sum() > 0


def test_the_trunk_gives_the_same_features_fused_or_not(monkeypatch):
    """The whole Lite0 trunk, odd and even sizes, fp32 and bf16: fused gives the plain ops' features."""
    torch.manual_seed(0)
    trunk = EfficientNetLite(lambda c: FrozenBatchNorm2d(c, 1e-3)).eval()
    for conv in (m for m in trunk.modules() if isinstance(m, torch.nn.Conv2d)):
        torch.nn.init.kaiming_normal_(conv.weight, mode="fan_in")  # features of about unit size, to the last level
    for size in ((64, 96), (67, 101)):
        x = torch.randn(1, 3, *size).contiguous(memory_format=torch.channels_last)
        for bf16 in (False, True) if BF16 else (False,):
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                fused = trunk(x)
                with monkeypatch.context() as m:
                    m.setattr("densepose.modeling.ops.fused_conv.fusion_possible", lambda *a: False)
                    plain = trunk(x)
            for a, b in zip(fused, plain):
                if bf16:
                    assert torch.equal(a, b)
                else:  # oneDNN may sum in another order when it fuses: fp32 rounding apart (1e-6 of 15)
                    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_no_fusion_where_it_is_not_exact_or_safe():
    x, weight = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
    assert not fusion_possible(x.double(), weight.double(), None)  # oneDNN fuses fp32 and bf16 only
    assert not fusion_possible(x.requires_grad_(True), weight, None)  # training needs the clamp's gradient
    with torch.no_grad():
        assert fusion_possible(x, weight, None)
    assert compute_dtype(x) == torch.float32
    with torch.autocast("cpu", torch.bfloat16):
        assert compute_dtype(x) == torch.bfloat16
        assert compute_dtype(torch.zeros(2, dtype=torch.long)) == torch.long


def test_a_traced_graph_keeps_standard_ops():
    """Exported graphs (TorchScript, ONNX) must run where oneDNN's private op does not exist."""
    layer = ConvBN(4, 8, 3, 2, FrozenBatchNorm2d(8, 1e-3), act=True).eval()
    with torch.no_grad():
        graph = torch.jit.trace(layer, torch.randn(1, 4, 16, 16))
    text = str(graph.inlined_graph)
    assert "_convolution_pointwise" not in text and "hardtanh" in text
