"""Comparisons for a test's *check* part: by type and by content, with messages that say what was expected.

Every function raises ``AssertionError`` with a message for the student when the value is wrong and returns
nothing otherwise.  Values are what ``wire.decode`` produced, so types are exact: ``equal(got, (3, 5))``
fails for ``[3, 5]``, ``(3.0, 5.0)``, a tuple subclass or an object whose ``__eq__`` always returns True.

``raised`` is for the *call* part: ``err = expect.raised(fans, nn.ReLU())`` is the exception (or None).
"""

from __future__ import annotations

import math

from lecture_grading.wire import Foreign, Raised

__all__ = ["same", "describe", "equal", "close", "all_close", "tensor_close", "tensor", "raises", "raised"]


def raised(fn, *args, **kwargs):
    """For a test's call part: the exception ``fn(*args, **kwargs)`` raised, or None if it returned."""
    try:
        fn(*args, **kwargs)
    except Exception as e:
        return e
    return None


def same(a, b) -> bool:
    """Equal in type and content, recursively (floats exactly; NaN equals NaN; tensors by shape, dtype, values)."""
    if _is_tensor(a) and _is_tensor(b):
        return a.shape == b.shape and a.dtype == b.dtype and bool((a == b).all())
    if type(a) is not type(b):
        return False
    if isinstance(a, Foreign):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) is float:
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _is_tensor(v) -> bool:
    import sys

    torch = sys.modules.get("torch")
    # Decoded values are plain tensors; a Parameter only reaches here when a master's test cells run in place.
    return torch is not None and isinstance(v, torch.Tensor)


def describe(v, limit: int = 120) -> str:
    """A short description of a value for a message: its repr and, where it helps, its type."""
    if v is None:
        return "None"
    if isinstance(v, Foreign):
        return f"an object of type {v.type_name}"
    if isinstance(v, Raised):
        return f"an exception {v!r}"
    if _is_tensor(v):
        return f"a tensor of shape {tuple(v.shape)} and dtype {str(v.dtype).removeprefix('torch.')}"
    text = repr(v)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    t = type(v)
    if t in (tuple, list) and v:
        kinds = sorted({type(x).__name__ for x in v})
        return f"{text} (a {t.__name__} of {' and '.join(kinds)})"
    if t in (int, float, bool, str):
        return f"{text} (a {t.__name__})"
    return f"{text} (a {t.__name__})"


def _fail(what: str, expected: str, got) -> None:
    raise AssertionError(f"{what} should be {expected}, got {describe(got)}")


def equal(got, want, what: str) -> None:
    """``got`` must equal ``want`` in type and content (see ``same``)."""
    if not same(got, want):
        _fail(what, describe(want), got)


def close(got, want: float, what: str, rel: float = 1e-9, abs_tol: float = 0.0) -> None:
    """``got`` must be a float (not an int, a tensor or a NumPy scalar) within ``rel``/``abs_tol`` of ``want``."""
    if type(got) is not float:
        _fail(what, f"a float close to {want:.6g}", got)
    if not math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol):
        _fail(what, f"{want:.6g}", got)


def all_close(got, want: list[float], what: str, rel: float = 1e-9, abs_tol: float = 0.0) -> None:
    """``got`` must be a list of floats, as long as ``want`` and close to it element by element."""
    if type(got) is not list or not all(type(x) is float for x in got):
        _fail(what, f"a list of {len(want)} floats", got)
    if len(got) != len(want):
        _fail(what, f"a list of {len(want)} floats", got)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if not math.isclose(g, w, rel_tol=rel, abs_tol=abs_tol):
            raise AssertionError(f"{what} should be {w:.6g} at element {i}, got {g:.6g}")


def tensor(got, what: str, shape: tuple | None = None, floating: bool = True):
    """``got`` must be a tensor (of ``shape``, floating point, finite); returns it."""
    if not _is_tensor(got):
        _fail(what, "a tensor" + (f" of shape {shape}" if shape else ""), got)
    if shape is not None and tuple(got.shape) != tuple(shape):
        _fail(what, f"a tensor of shape {tuple(shape)}", got)
    if floating:
        if not got.is_floating_point():
            _fail(what, "a floating-point tensor", got)
        if not bool(got.isfinite().all()):
            raise AssertionError(f"{what} contains NaN or inf")
    return got


def tensor_close(got, want, what: str, atol: float = 1e-5) -> None:
    """``got`` must be a finite tensor of ``want``'s shape whose largest difference from it is at most ``atol``."""
    tensor(got, what, shape=tuple(want.shape))
    err = (got.double() - want.double()).abs().max().item() if want.numel() else 0.0
    if not err <= atol:
        raise AssertionError(f"{what} differs from the expected values by up to {err:.3g} (allowed: {atol:g})")


def raises(got, exc_name: str, what: str) -> None:
    """``got`` (from ``raised``) must be an exception of class ``exc_name`` or a subclass of it."""
    if isinstance(got, BaseException):  # a master's test cells run in place, without the wire
        got = Raised(tuple(f"{c.__module__}.{c.__qualname__}" for c in type(got).__mro__), str(got))
    if not isinstance(got, Raised):
        raise AssertionError(f"{what} should raise {exc_name}, but it " + (
            "returned without raising" if got is None else f"gave {describe(got)}"))
    if not got.is_a(exc_name):
        raise AssertionError(f"{what} should raise {exc_name}, but it raised {got!r}")
