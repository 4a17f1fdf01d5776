"""DensePose in pure PyTorch.

Subpackages, in the direction data flows:
surface (body charts, geodesics) -> data, synth -> modeling -> engine -> evaluation, vis;
annotate and cli sit on top.
"""
__version__ = "0.1.0"


def load(path=None, **kwargs):
    """Load a DensePose predictor: the bundled model, or the checkpoint at ``path``.

    See ``densepose.api.load``; imported lazily so that ``import densepose`` stays light.
    """
    from densepose.api import load as _load

    return _load(path, **kwargs)
