"""Data only, as JSON and arrays: what a checkpoint (``sinsim.sim.checkpoint``) holds.

``Encoder`` turns nested dicts (plain and ordered), lists, tuples, numbers, strings, numpy scalars,
tensors and arrays into JSON-able values, setting the arrays aside (``{"$tensor": "a3"}``: the
array ``a3``); a dict or array held twice is stored once (``$id`` / ``$ref``) and comes back as one
object; anything else (an object that could run code when loaded) is refused with a
``TypeError``. ``Decoder`` reads them back from a zip archive of ``.npy`` files with
``allow_pickle=False``; what it does not expect raises ``ValueError`` / ``KeyError``.
"""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

__all__ = ["Encoder", "Decoder", "as_list"]

_SCALAR_KINDS = "biuf"  # numpy scalars: bool, int, uint, float
_TORCH_ONLY = {torch.bfloat16: torch.int16}  # no numpy dtype: stored as their bits
_TENSOR_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
    torch.complex128, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.bool)}



class Encoder:
    """Data to JSON-able values, the arrays set aside in ``arrays``."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.seen: dict[int, Any] = {}  # id -> the encoded first occurrence (dicts, arrays)
        self.shared: dict[int, int] = {}  # id -> its $id, for those held more than once
        self._keep: list[Any] = []  # the objects whose ids are keys above stay alive

    def encode(self, obj: Any) -> Any:
        self._count(obj, set())
        self.seen.clear()
        return self._enc(obj, "")

    def _count(self, obj: Any, path: set[int]) -> None:
        """Which dicts and arrays the data holds more than once (and no cycles)."""
        if isinstance(obj, (dict, list, tuple, torch.Tensor, np.ndarray)):
            if id(obj) in path:
                raise TypeError("checkpoint: the state holds a cycle")
            if id(obj) in self.seen:
                if isinstance(obj, (dict, torch.Tensor, np.ndarray)):
                    self.shared.setdefault(id(obj), len(self.shared))
                return
            self.seen[id(obj)] = None
            self._keep.append(obj)
            if isinstance(obj, dict):
                path.add(id(obj))
                for k, v in obj.items():
                    self._count(k, path)
                    self._count(v, path)
                path.discard(id(obj))
            elif isinstance(obj, (list, tuple)):
                path.add(id(obj))
                for v in obj:
                    self._count(v, path)
                path.discard(id(obj))

    def _enc(self, obj: Any, where: str) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.generic):
            if obj.dtype.kind not in _SCALAR_KINDS:
                raise TypeError(f"checkpoint: cannot store a numpy {obj.dtype} at {where}")
            return {"$scalar": obj.dtype.str, "value": obj.item()}
        if isinstance(obj, (int, float)):
            return obj if type(obj) in (int, float) else self._fail(obj, where)
        if isinstance(obj, list):
            return [self._enc(v, f"{where}.{i}") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"$tuple": [self._enc(v, f"{where}.{i}") for i, v in enumerate(obj)]}
        ref = self.shared.get(id(obj))
        if ref is not None and id(obj) in self.seen:
            return {"$ref": ref}
        if isinstance(obj, dict):
            value = self._dict(obj, where)
        elif isinstance(obj, (torch.Tensor, np.ndarray)):
            value = self._array(obj, where)
        else:
            return self._fail(obj, where)
        if ref is None:
            return value
        self.seen[id(obj)] = True
        return {"$id": ref, "value": value}

    def _dict(self, obj: dict, where: str) -> Any:
        if type(obj) not in (dict, OrderedDict):
            return self._fail(obj, where)
        if type(obj) is dict and all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: self._enc(v, f"{where}.{k}") for k, v in obj.items()}
        items = [[self._enc(k, where), self._enc(v, f"{where}.{k}")] for k, v in obj.items()]
        return {"$odict" if type(obj) is OrderedDict else "$dict": items}

    def _array(self, obj: torch.Tensor | np.ndarray, where: str) -> dict[str, Any]:
        key = f"a{len(self.arrays)}"
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject or obj.dtype.kind not in "biufc":
                raise TypeError(f"checkpoint: cannot store a numpy {obj.dtype} array at {where}")
            self.arrays[key] = obj
            return {"$ndarray": key}
        t = obj.detach().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in _TENSOR_DTYPES:
            raise TypeError(f"checkpoint: cannot store a {dtype} tensor at {where}")
        if t.dtype in _TORCH_ONLY:
            t = t.view(_TORCH_ONLY[t.dtype])
        self.arrays[key] = t.resolve_conj().resolve_neg().numpy()
        return {"$tensor": key, "dtype": dtype}

    @staticmethod
    def _fail(obj: Any, where: str) -> Any:
        raise TypeError(f"checkpoint: cannot store a {type(obj).__name__} at {where or '(top)'}"
                        f": a checkpoint holds only dicts, lists, numbers, strings, tensors "
                        f"and arrays")


class Decoder:
    """JSON-able values back to data, reading the arrays from the archive."""

    def __init__(self, z: zipfile.ZipFile):
        self.z = z
        self.refs: dict[int, Any] = {}
        self.read: set[str] = set()

    def decode(self, obj: Any) -> Any:
        if obj is None or type(obj) in (bool, int, float, str):
            return obj
        if isinstance(obj, list):
            return [self.decode(v) for v in obj]
        if not isinstance(obj, dict):
            raise ValueError(f"unexpected {type(obj).__name__}")
        if not any(isinstance(k, str) and k.startswith("$") for k in obj):
            return {k: self.decode(v) for k, v in obj.items()}
        if "$id" in obj:
            ref = obj["$id"]
            if type(ref) is not int or ref in self.refs or set(obj) != {"$id", "value"}:
                raise ValueError("bad $id")
            value = self.decode(obj["value"])
            if not isinstance(value, (dict, torch.Tensor, np.ndarray)):
                raise ValueError("$id of neither a mapping nor an array")
            self.refs[ref] = value
            return value
        (tag, value), *rest = obj.items()
        if tag == "$ref":
            return self.refs[value]  # KeyError: not defined before
        if tag == "$tuple":
            return tuple(self.decode(v) for v in as_list(value))
        if tag in ("$dict", "$odict"):
            items = [(self.decode(k), self.decode(v)) for k, v in _pairs(value)]
            return OrderedDict(items) if tag == "$odict" else dict(items)
        if tag == "$scalar":
            dtype = np.dtype(str(value))
            if dtype.kind not in _SCALAR_KINDS or type(obj["value"]) not in (bool, int, float):
                raise ValueError(f"bad scalar {value!r}")
            return dtype.type(obj["value"])
        if tag == "$ndarray":
            return self._array(value)
        if tag == "$tensor":
            dtype = _TENSOR_DTYPES[obj["dtype"]]  # KeyError: not a dtype it stores
            t = torch.from_numpy(self._array(value))
            t = t.view(dtype) if dtype in _TORCH_ONLY else t
            if t.dtype != dtype:
                raise ValueError(f"tensor {value}: {t.dtype}, not {dtype}")
            return t
        raise ValueError(f"unknown tag {tag!r}")

    def _array(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key in self.read:
            raise ValueError(f"bad array reference {key!r}")
        self.read.add(key)
        with self.z.open(f"{key}.npy") as f:
            array = np.lib.format.read_array(f, allow_pickle=False)
        if array.dtype.hasobject or array.dtype.kind not in "biufc":
            raise ValueError(f"array {key}: dtype {array.dtype}")
        return array


def as_list(value: Any) -> list:
    """``value`` if it is a list, else ``ValueError``."""
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value


def _pairs(value: Any) -> list:
    if not all(isinstance(p, list) and len(p) == 2 for p in as_list(value)):
        raise ValueError("not a list of pairs")
    return value
