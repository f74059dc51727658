"""Results as plain data: what a test's *call* part produced, in a form that runs no code when read.

``encode(value)`` turns a result into JSON-able data plus a dict of tensors; ``decode`` turns them back into
exact built-in types (``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``tuple``, ``dict`` with
``str`` keys), plain ``torch.Tensor``s, ``Raised`` (an exception, by class names and message) and ``Foreign``
(anything else, by type name only).  The type is part of the data: a subclass of ``int`` or of ``tuple``, an
object whose ``__eq__`` always returns True, a NumPy scalar, all arrive as ``Foreign`` and equal nothing.

Between processes the tensors travel as ``safetensors`` bytes (``to_bytes``/``from_bytes``), never pickle.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass

#: Nesting and size limits: a result deeper or larger than this arrives as a Foreign.
MAX_DEPTH = 32
MAX_ITEMS = 200_000
MAX_MESSAGE = 500

# safetensors' dtypes (torch names); others (complex, quantized, sparse) arrive as Foreign.
_DTYPES = {"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}


@dataclass(frozen=True)
class Foreign:
    """A value of a type the wire does not carry: only its type's name arrives.  It equals nothing."""

    type_name: str

    def __eq__(self, other):
        return False

    def __hash__(self):
        return hash(("Foreign", self.type_name))

    def __repr__(self):
        return f"<{self.type_name} object>"


@dataclass(frozen=True)
class Raised:
    """An exception caught by a test's call: its class and base classes (qualified names) and message."""

    names: tuple[str, ...]
    message: str

    @property
    def name(self) -> str:
        return self.names[0] if self.names else "?"

    def is_a(self, name: str) -> bool:
        """True if the exception is a ``name`` (e.g. ``"ValueError"``) or a subclass of a built-in one."""
        return name in self.names or f"builtins.{name}" in self.names

    def __repr__(self):
        short = self.name.removeprefix("builtins.")
        return f"{short}({self.message!r})" if self.message else f"{short}()"


def _qualname(t: type) -> str:
    mod = getattr(t, "__module__", None) or "?"
    return f"{mod}.{getattr(t, '__qualname__', getattr(t, '__name__', '?'))}"


class _Encoder:
    def __init__(self):
        self.tensors: dict = {}
        self.items = 0

    def __call__(self, v, depth: int = 0):
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            return {"__foreign__": "a value nested too deep or too large"}
        t = type(v)
        if v is None or t in (bool, str):
            return v
        if t is int:
            return v
        if t is float:
            return v if v == v and v not in (float("inf"), float("-inf")) else {"__float__": repr(v)}
        if t is list:
            return [self(x, depth + 1) for x in v]
        if t is tuple:
            return {"__tuple__": [self(x, depth + 1) for x in v]}
        if t in (dict, collections.OrderedDict):
            if all(type(k) is str for k in v):
                return {"__dict__": {k: self(x, depth + 1) for k, x in v.items()}}
            return {"__foreign__": "a dict whose keys are not all str"}
        if isinstance(v, BaseException):
            names = [_qualname(c) for c in t.__mro__ if c is not object]
            try:
                message = str(v)[:MAX_MESSAGE]
            except Exception:  # a student's __str__ that raises
                message = "<message unavailable>"
            return {"__raised__": names, "message": message}
        tensor = self._tensor(v)
        if tensor is not None:
            return tensor
        return {"__foreign__": _qualname(t)}

    def _tensor(self, v):
        torch = _torch_if_loaded()
        if torch is None or not isinstance(v, torch.Tensor):
            return None
        plain = type(v) in (torch.Tensor, torch.nn.Parameter)
        try:
            t = v.detach()
            if t.layout != torch.strided or str(t.dtype).removeprefix("torch.") not in _DTYPES:
                return {"__foreign__": f"a tensor of dtype {t.dtype} / layout {t.layout}"}
            t = t.to("cpu").contiguous().clone().as_subclass(torch.Tensor)
        except Exception as e:  # a tensor subclass that refuses
            return {"__foreign__": f"a tensor that could not be copied ({type(e).__name__})"}
        key = f"t{len(self.tensors)}"
        self.tensors[key] = t
        return {"__tensor__": key} if plain else {"__tensor__": key, "subclass": _qualname(type(v))}


def _torch_if_loaded():
    import sys

    return sys.modules.get("torch")


def encode(value) -> tuple[object, dict]:
    """``(data, tensors)``: JSON-able data and the tensors it refers to (plain, CPU, contiguous copies)."""
    enc = _Encoder()
    return enc(value), enc.tensors


def decode(data, tensors: dict):
    """The value ``encode`` was given, as exact built-in types, tensors, ``Raised`` or ``Foreign``."""
    return _decode(data, tensors, 0)


def _decode(d, tensors, depth):
    if depth > MAX_DEPTH + 2:
        return Foreign("a value nested too deep")
    t = type(d)
    if d is None or t in (bool, str, int, float):
        return d
    if t is list:
        return [_decode(x, tensors, depth + 1) for x in d]
    if t is not dict or len(d) == 0:
        return Foreign("malformed data")
    if "__tuple__" in d and type(d["__tuple__"]) is list and len(d) == 1:
        return tuple(_decode(x, tensors, depth + 1) for x in d["__tuple__"])
    if "__dict__" in d and type(d["__dict__"]) is dict and len(d) == 1:
        return {str(k): _decode(x, tensors, depth + 1) for k, x in d["__dict__"].items()}
    if "__float__" in d and d["__float__"] in ("nan", "inf", "-inf") and len(d) == 1:
        return float(d["__float__"])
    if "__tensor__" in d and type(d["__tensor__"]) is str:
        tensor = tensors.get(d["__tensor__"])
        if tensor is None:
            return Foreign("a missing tensor")
        if "subclass" in d:
            return Foreign(f"{d['subclass']} (a tensor subclass)")
        return tensor
    if "__raised__" in d and type(d["__raised__"]) is list and all(type(n) is str for n in d["__raised__"]):
        message = d.get("message", "")
        return Raised(tuple(d["__raised__"]), message if type(message) is str else "")
    if "__foreign__" in d and type(d["__foreign__"]) is str:
        return Foreign(d["__foreign__"][:200])
    return Foreign("malformed data")


def to_bytes(tensors: dict) -> bytes:
    """The tensors as ``safetensors`` bytes (empty for none)."""
    if not tensors:
        return b""
    from safetensors.torch import save

    return save(tensors)


def from_bytes(raw: bytes) -> dict:
    """Tensors from ``safetensors`` bytes: a safe format, nothing in it is executed."""
    if not raw:
        return {}
    from safetensors.torch import load

    return load(raw)


def dumps(value) -> tuple[dict, bytes]:
    """``value`` as a JSON-able message ``{"data": ..., "tensor_bytes": n}`` and the n bytes of its tensors
    (``safetensors``), which travel raw after the message."""
    data, tensors = encode(value)
    blob = to_bytes(tensors)
    return {"data": data, "tensor_bytes": len(blob)}, blob


def loads(message: dict, blob: bytes = b""):
    """The value of a ``dumps`` message and its tensor bytes (raises ``ValueError`` if it is malformed)."""
    if type(message) is not dict or "data" not in message:
        raise ValueError("malformed result message")
    try:
        tensors = from_bytes(blob)
    except Exception as e:
        raise ValueError(f"malformed tensors: {type(e).__name__}") from None
    if any(type(k) is not str for k in tensors):
        raise ValueError("malformed tensors")
    return decode(message["data"], tensors)


def roundtrip(value):
    """``decode(encode(value))`` in one process: what the grader would see of ``value``."""
    data, tensors = encode(value)
    # Through JSON too, so that what a student's check sees is exactly what grading sees.
    return decode(json.loads(json.dumps(data)), tensors)
