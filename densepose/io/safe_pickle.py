"""Read pickles as data: only NumPy arrays and plain containers can be rebuilt, so no code runs.

A pickle names the callables that rebuild its objects; ``pickle.load`` imports and calls whatever it
names (``os.system`` included). `load_restricted_pickle` resolves only a fixed list of harmless
names (array and dtype constructors, ``OrderedDict``, the latin-1 bytes codec of Python 2 pickles)
and refuses everything else before anything is called. detectron2 model-zoo ``.pkl`` files
(``{"model": {name: ndarray}, ...}``), ``Pdist_matrix.pkl`` and SMPL model files read this way.

Classes of foreign libraries that some data files contain (chumpy arrays and scipy sparse matrices
in SMPL files) can be allowed by name as *stand-ins*: they become `OpaqueObject` records holding
the pickled state (plain data, itself unpickled under the same rules); no library code is imported.
"""
from __future__ import annotations

import codecs
import io
import pickle
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from densepose.errors import UserError


class UnsafePickleError(UserError):
    """The pickle names something other than arrays and plain containers."""


class OpaqueObject:
    """An allowed foreign object, kept as data: ``class_name`` and its pickled ``state``/``args``."""

    class_name = "?"
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any):
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"OpaqueObject({self.class_name})"


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Python 2 pickles carry bytes as `_codecs.encode(str, "latin1")`; any other codec is refused.
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return text.encode("latin1")


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    # copyreg._reconstructor for protocol 0/1 objects, limited to the classes resolved above.
    if base is object:
        return object.__new__(cls)
    if base is np.ndarray and cls is np.ndarray:
        return np.ndarray.__new__(cls, *state) if state is not None else np.ndarray.__new__(cls, 0)
    raise pickle.UnpicklingError(f"cannot rebuild {cls!r} from {base!r}")


def _frombuffer(buffer: Any, dtype: np.dtype, shape: tuple, order: str) -> np.ndarray:
    # NumPy's protocol-5 array rebuild (numpy._core.numeric._frombuffer), written out.
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("object arrays cannot come from a raw buffer")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order).copy()


def _numpy_global(name: str) -> Any:
    if name == "_reconstruct":
        return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own array rebuild function
    if name == "scalar":
        return np.float32(0).__reduce__()[0]  # numpy's scalar rebuild function
    raise KeyError(name)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
}
for _module in ("builtins", "__builtin__"):  # Python 2 pickles name the builtins module __builtin__
    _ALLOWED.update({(_module, "set"): set, (_module, "frozenset"): frozenset, (_module, "complex"): complex})
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = _frombuffer
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    for _name in ("_reconstruct", "scalar"):
        _ALLOWED[(_module, _name)] = _numpy_global(_name)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], stand_ins: frozenset[str]):
        super().__init__(file, encoding="latin1")
        self._stand_ins = stand_ins

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        full = f"{module}.{name}"
        if full in self._stand_ins:
            return type(name, (OpaqueObject,), {"class_name": full})
        raise UnsafePickleError(
            f"refused: the pickle asks for {full}, which could run code; only NumPy arrays and plain containers "
            "are allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused: the pickle uses persistent ids (a torch file?); only NumPy arrays and "
                                "plain containers are allowed")


def load_restricted_pickle(source: str | Path | bytes | IO[bytes], stand_ins: Iterable[str] = ()) -> Any:
    """Unpickle ``source`` (a path, bytes or a binary file) allowing only data.

    ``stand_ins``: fully qualified class names (e.g. ``"chumpy.ch.Ch"``) that are rebuilt as
    `OpaqueObject` records instead of being refused. Raises `UnsafePickleError` (a `UserError`)
    naming the refused callable, before calling anything from the file, and `UserError` for a
    truncated or corrupt pickle; a path's name starts the message.
    """
    allowed = frozenset(stand_ins)
    label = f"{source}: " if isinstance(source, (str, Path)) else ""
    try:
        if isinstance(source, (str, Path)):
            with open(source, "rb") as f:
                return _RestrictedUnpickler(f, allowed).load()
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _RestrictedUnpickler(io.BytesIO(source), allowed).load()
        return _RestrictedUnpickler(source, allowed).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{label}{exc}") from None
    except OSError as exc:
        raise UserError(f"{label}cannot read ({exc.strerror or exc})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError) as exc:
        raise UserError(f"{label}not a readable pickle ({exc.__class__.__name__}: {exc})") from None
