"""The restricted unpickler rebuilds arrays and plain containers and refuses everything else."""
import os
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

from densepose.errors import UserError
from densepose.io.safe_pickle import OpaqueObject, UnsafePickleError, load_restricted_pickle


class _MakesAFile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_round_trip_of_detectron2_style_data(protocol):
    data = {
        "model": OrderedDict(w=np.arange(24, dtype=np.float32).reshape(2, 3, 4),
                             f=np.asfortranarray(np.arange(6.0).reshape(2, 3)),
                             step=np.int64(7), names=np.array(["a", "bc"], dtype=object)),
        "__author__": "Detectron2 Model Zoo", "matching_heuristics": True, "ids": {1, 2}, "raw": b"\x00\xff",
    }
    out = load_restricted_pickle(pickle.dumps(data, protocol=protocol))
    for key, value in data["model"].items():
        np.testing.assert_array_equal(out["model"][key], value)
    assert out["model"]["w"].dtype == np.float32 and out["ids"] == {1, 2} and out["raw"] == b"\x00\xff"


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_code_is_refused_before_it_runs(tmp_path, protocol):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": _MakesAFile(marker)}}, protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl: refused: the pickle asks for (posix|os|nt)\.system"):
        load_restricted_pickle(path)
    assert not marker.exists()
    assert issubclass(UnsafePickleError, UserError)


def test_stand_ins_keep_foreign_objects_as_data(monkeypatch):
    module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self):
            self.x = np.ones(3)

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    blob = pickle.dumps({"v_template": Ch()}, protocol=2)
    with pytest.raises(UnsafePickleError, match="chumpy.ch.Ch"):
        load_restricted_pickle(blob)
    out = load_restricted_pickle(blob, stand_ins=["chumpy.ch.Ch"])["v_template"]
    assert isinstance(out, OpaqueObject) and out.class_name == "chumpy.ch.Ch"
    np.testing.assert_array_equal(out.state["x"], np.ones(3))


def test_corrupt_and_missing_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not a readable pickle"):
        load_restricted_pickle(b"\x80\x04garbage")
    with pytest.raises(UserError, match="nothere.pkl: cannot read"):
        load_restricted_pickle(tmp_path / "nothere.pkl")
