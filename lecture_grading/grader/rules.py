"""An assignment's rules about what its code may use, checked by reading the code (never by running it).

A master's ``# ASSIGNMENT CONFIG`` may say::

    rules:
      forbid: [torch.nn.init, lecture_utils]   # modules, classes or functions the answers must not use
      allow: [lecture_utils.config]            # exceptions to forbid

``violations(source, rules)`` lists every place the code names a forbidden module (imports, attribute chains
through any alias such as ``nn.init`` or ``F.batch_norm``, and the forbidden name itself as an attribute of
anything, e.g. ``linear.init``), and every use of code that could reach one without naming it: ``exec``,
``eval``, ``compile``, ``__import__``, ``importlib``, ``getattr``/``setattr`` with a computed name,
``globals()``/``vars()``, ``sys.modules``, ``sys.path`` (a forbidden module imported under another name),
``__dict__``/``__globals__``/``__subclasses__``, ``operator``'s ``attrgetter``, ``pickle``, ``ctypes``,
``subprocess``/``os.system`` (code in a string run by another program) and the like.

What it does not catch: a library that calls a forbidden function on the code's behalf without being named
(say, a package that wraps ``torch.nn.init``: name it in ``forbid`` too), and code copied from a forbidden
module's source, which is the same as writing it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars", "breakpoint"}
NAME_CALLS = {"getattr", "setattr", "delattr", "hasattr"}
DYNAMIC_MODULES = {"importlib", "builtins", "ctypes", "pickle", "marshal", "runpy", "types", "inspect", "gc",
                   "subprocess", "code", "codeop", "pydoc", "dill", "cloudpickle", "operator", "zipimport", "pkgutil"}
DYNAMIC_ATTRS = {"__dict__", "__globals__", "__builtins__", "__subclasses__", "__getattribute__", "__import__",
                 "__code__", "__closure__", "__loader__", "__spec__", "__bases__", "__base__", "__mro__",
                 "attrgetter", "methodcaller", "__reduce__", "__getattr__"}
#: IPython's ways to run code given as a string (what ``%run``, ``!cmd`` and ``%%bash`` become).
SHELL_CALLS = {"run_cell", "run_cell_async", "ex", "ev", "run_code", "safe_execfile", "safe_execfile_ipy",
               "safe_run_module", "run_ast_nodes", "system", "system_piped", "system_raw", "getoutput",
               "run_line_magic", "run_cell_magic", "magic"}
#: Magics that run no code of their own.
SAFE_MAGICS = {"matplotlib", "time", "timeit", "config", "precision", "who", "whos", "pinfo", "pinfo2", "pdoc",
               "pdef", "psource", "pfile", "psearch"}
#: Attribute chains (through any alias) that run or find code by name.
DYNAMIC_CHAINS = ("sys.modules", "sys.path", "sys.meta_path", "os.system", "os.popen", "os.exec", "os.spawn",
                  "os.posix_spawn", "torch.package", "torch.utils.cpp_extension")


@dataclass(frozen=True)
class Violation:
    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}"


def _match(name: str, prefixes) -> str | None:
    for p in prefixes:
        if name == p or name.startswith(p + "."):
            return p
    return None


def violations(source: str, rules: dict) -> list[Violation]:
    """Every place ``source`` breaks ``rules`` (``forbid``, ``allow`` lists); empty if none or no rules."""
    forbid = list(rules.get("forbid") or [])
    allow = list(rules.get("allow") or [])
    if not forbid:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        # Not plain Python: magics (%run, !cmd) become the calls they stand for, so that they are read too.
        # (Plain Python is what IPython runs unchanged: importing IPython for it would cost the grader 0.3 s.)
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            source = TransformerManager().transform_cell(source)
        except Exception:
            pass
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return []  # it cannot run either
        except (ValueError, RecursionError):
            return [Violation(1, "code that cannot be read")]

    def forbidden(full: str) -> bool:
        return _match(full, forbid) is not None and _match(full, allow) is None

    last_parts = {f.rsplit(".", 1)[1] for f in forbid if "." in f}
    aliases: dict[str, str] = {}
    found: list[Violation] = []
    chained: set[int] = set()

    def flag(node: ast.AST, what: str) -> None:
        found.append(Violation(getattr(node, "lineno", 0), what))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if forbidden(a.name) or a.name.rsplit(".", 1)[-1] in last_parts:
                    flag(node, f"imports {a.name}, which this assignment forbids")
                elif a.name.split(".")[0] in DYNAMIC_MODULES:
                    flag(node, f"imports {a.name} (code that could reach a forbidden module unseen)")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = full
                if forbidden(full if a.name != "*" else node.module) or node.module.rsplit(".", 1)[-1] in last_parts:
                    flag(node, f"imports {full if a.name != '*' else node.module}, which this assignment forbids")
                elif node.module.split(".")[0] in DYNAMIC_MODULES:
                    flag(node, f"imports from {node.module} (code that could reach a forbidden module unseen)")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in chained:
            parts, cur = [], node
            while isinstance(cur, ast.Attribute):
                chained.add(id(cur))
                parts.append(cur.attr)
                cur = cur.value
            parts.reverse()
            if isinstance(cur, ast.Name) and cur.id in aliases:
                full = ".".join([aliases[cur.id], *parts])
                hit = next((".".join([aliases[cur.id], *parts[:k]]) for k in range(len(parts) + 1)
                            if forbidden(".".join([aliases[cur.id], *parts[:k]]))), None)
                if hit:
                    flag(node, f"uses {full}, which this assignment forbids")
                    continue
                if any(full.startswith(c) for c in DYNAMIC_CHAINS):
                    flag(node, f"uses {full} (code that could reach a forbidden module unseen)")
                    continue
            for p in parts:
                if p in last_parts:
                    flag(node, f"uses .{p}, which this assignment forbids")
                    break
                if p in DYNAMIC_ATTRS:
                    flag(node, f"uses .{p} (code that could reach a forbidden module unseen)")
                    break
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SHELL_CALLS:
            first = node.args[0] if node.args else None
            magic = first.value if isinstance(first, ast.Constant) else None
            if not (node.func.attr.endswith("_magic") and magic in SAFE_MAGICS):
                shown = f"%{magic}" if magic and node.func.attr.endswith("_magic") else f".{node.func.attr}()"
                flag(node, f"runs {shown} (code in a string, which could reach a forbidden module unseen)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            fn = node.func.id
            if fn in DYNAMIC_CALLS:
                flag(node, f"calls {fn}() (code that could reach a forbidden module unseen)")
            elif fn in NAME_CALLS:
                name = node.args[1] if len(node.args) > 1 else None
                if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                    flag(node, f"calls {fn}() with a computed name (code that could reach a forbidden module unseen)")
                elif name.value in last_parts or name.value in DYNAMIC_ATTRS:
                    flag(node, f"calls {fn}(..., {name.value!r}), which this assignment forbids")
        elif isinstance(node, ast.Name) and node.id in ("__builtins__", "__import__", "__loader__", "__spec__"):
            flag(node, f"uses {node.id} (code that could reach a forbidden module unseen)")
    found.sort(key=lambda v: v.line)
    return found
