"""DensePose in pure PyTorch.

Subpackages, in the direction data flows:
surface (body charts, geodesics) -> data, synth -> modeling -> engine -> evaluation, vis;
annotate and cli sit on top.
"""
__version__ = "0.1.0"
