"""lecture_grading without a sandbox: the wire format, the comparisons, tests in three parts, the rules."""

import json
import math

import pytest
import torch
from torch import nn

from lecture_grading import Checks, TestSpec, expect, wire
from lecture_grading.checks import assigned_names, run_call, run_check
from lecture_grading.grader import rules


# -- wire ----------------------------------------------------------------------------------------------------
def test_plain_values_keep_their_exact_types():
    value = {"a": (3, 5), "b": [1.5, True, None, "x"], "c": {"d": -(2**70)}, "e": float("nan"), "f": float("inf")}
    back = wire.roundtrip(value)
    assert back["a"] == (3, 5) and type(back["a"]) is tuple
    assert [type(v) for v in back["b"]] == [float, bool, type(None), str]
    assert back["c"]["d"] == -(2**70) and math.isnan(back["e"]) and back["f"] == math.inf


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class IntLike(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class TupleLike(tuple):
    def __eq__(self, other):
        return True

    __hash__ = tuple.__hash__


@pytest.mark.parametrize("evil", [AlwaysEqual(), IntLike(3), TupleLike((3, 5)), torch.tensor(3).numpy()],
                         ids=["eq-always-true", "int-subclass", "tuple-subclass", "numpy-scalar"])
def test_objects_that_claim_equality_arrive_as_foreign_and_equal_nothing(evil):
    back = wire.roundtrip(evil)
    assert isinstance(back, wire.Foreign)
    assert back != (3, 5) and (3, 5) != back and back != back  # noqa: PLR0124
    assert not expect.same(back, (3, 5))
    with pytest.raises(AssertionError, match=r"should be \(3, 5\) \(a tuple of int\), got an object of type"):
        expect.equal(back, (3, 5), "fans(layer)")


def test_tensors_travel_as_safetensors_and_arrive_plain():
    p = nn.Parameter(torch.arange(6.0).reshape(2, 3))
    header, blob = wire.dumps({"w": p, "t": p.T, "i": torch.tensor([1, 2])})
    assert blob[:8] != b"" and json.loads(json.dumps(header))["tensor_bytes"] == len(blob)
    back = wire.loads(json.loads(json.dumps(header)), blob)
    assert type(back["w"]) is torch.Tensor and not back["w"].requires_grad
    assert torch.equal(back["t"], p.detach().T) and back["i"].dtype == torch.int64


def test_tensor_subclasses_and_unsupported_tensors_are_foreign():
    class Sneaky(torch.Tensor):
        pass

    back = wire.roundtrip([torch.zeros(2).as_subclass(Sneaky), torch.zeros(2, dtype=torch.complex64)])
    assert all(isinstance(v, wire.Foreign) for v in back)
    assert "Sneaky" in back[0].type_name and "complex" in back[1].type_name


def test_exceptions_arrive_as_raised_with_their_classes():
    class MyError(ValueError):
        pass

    back = wire.roundtrip(MyError("bad layer"))
    assert isinstance(back, wire.Raised) and back.is_a("ValueError") and not back.is_a("TypeError")
    assert back.message == "bad layer"


@pytest.mark.parametrize("data", [{"__tuple__": 3}, {"__tensor__": "t9"}, {"x": 1}, {"__raised__": [1]}, {}])
def test_malformed_data_decodes_to_foreign_never_raises(data):
    assert isinstance(wire.decode(data, {}), wire.Foreign)


def test_loads_refuses_malformed_tensor_bytes():
    with pytest.raises(ValueError, match="malformed tensors"):
        wire.loads({"data": None}, b"\x00" * 20)


def test_deep_nesting_is_cut():
    v = []
    for _ in range(100):
        v = [v]
    back = wire.roundtrip(v)
    depth = 0
    while isinstance(back, list):
        back, depth = back[0], depth + 1
    assert isinstance(back, wire.Foreign) and depth <= wire.MAX_DEPTH + 1


# -- expect --------------------------------------------------------------------------------------------------
def test_close_wants_a_float():
    expect.close(0.1 + 1e-12, 0.1, "x", rel=1e-9)
    for bad in (None, 1, torch.tensor(0.1), "0.1"):
        with pytest.raises(AssertionError, match="should be a float close to 0.1"):
            expect.close(bad, 0.1, "xavier_std(100, 100)")
    with pytest.raises(AssertionError, match=r"should be 0.1, got 0.2 \(a float\)"):
        expect.close(0.2, 0.1, "xavier_std(100, 100)")


def test_tensor_close_reports_shape_and_difference():
    want = torch.ones(2, 3)
    expect.tensor_close(want + 1e-7, want, "y")
    with pytest.raises(AssertionError, match=r"should be a tensor of shape \(2, 3\), got None"):
        expect.tensor_close(None, want, "y")
    with pytest.raises(AssertionError, match="differs from the expected values by up to 0.5"):
        expect.tensor_close(want + 0.5, want, "y")
    with pytest.raises(AssertionError, match="NaN or inf"):
        expect.tensor_close(want * float("nan"), want, "y")


def test_raises_accepts_subclasses_only():
    expect.raises(wire.Raised(("__main__.MyError", "builtins.ValueError"), "m"), "ValueError", "f()")
    with pytest.raises(AssertionError, match="returned without raising"):
        expect.raises(None, "ValueError", "f()")
    with pytest.raises(AssertionError, match="raised TypeError"):
        expect.raises(wire.Raised(("builtins.TypeError",), "m"), "ValueError", "f()")


# -- tests in three parts ---------------------------------------------------------------------------------
CELL = """# HIDDEN
x = 3
# CALL
got = double(x)
_private = 1
# CHECK
expect.equal(got, 2 * x, "double(3)")
"""


def test_a_test_cell_splits_into_given_call_and_check():
    spec = TestSpec.from_cell(CELL, "q1", 2)
    assert (spec.id, spec.hidden, spec.given, spec.exports) == ("q1.2", True, "x = 3", ["got"])
    assert spec.call.startswith("got = double(x)") and spec.check.startswith("expect.equal")
    assert spec.problems() == []
    assert TestSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize("bad", ["x = 1", "# CHECK\nx\n# CALL\ny = 1", "# CALL\nf()\n# CHECK\nassert True"])
def test_a_test_cell_needs_its_markers_and_an_exported_name(bad):
    with pytest.raises(ValueError):
        TestSpec.from_cell(bad, "q1", 1)


def test_a_check_part_cannot_use_the_students_names():
    spec = TestSpec.from_cell("# CALL\ngot = double(3)\n# CHECK\nassert got == double(3)", "q1", 1)
    assert spec.problems() == ["test q1.1: its check part uses double, which only the student's process has"]


def test_assigned_names_in_order_without_private_ones():
    assert assigned_names("b = 1\na, c = 2, 3\nfor i in range(2):\n    d = i\n_e = 1\n[z for z in ()]") == [
        "b", "a", "c", "i", "d"]


def test_call_runs_in_a_copy_and_check_sees_only_data():
    spec = TestSpec.from_cell(CELL, "q1", 1)
    ns = {"double": lambda v: 2 * v, "torch": "the student's own torch"}
    raw = run_call(spec, ns)
    assert raw == {"got": 6} and "got" not in ns and ns["torch"] == "the student's own torch"
    assert run_check(spec, wire.roundtrip(raw)) is None
    assert run_check(spec, {"got": 7}) == "double(3) should be 6 (a int), got 7 (a int)"
    assert run_check(spec, {"got": wire.Foreign("x.Evil")}) == "double(3) should be 6 (a int), got an object of type x.Evil"
    assert run_check(spec, {}) == "the result of the call is missing or malformed"


def test_checks_run_public_tests_in_the_notebook_namespace():
    spec = TestSpec.from_cell("# CALL\ngot = double(3)\n# CHECK\nexpect.equal(got, 6, 'double(3)')", "q1", 1)
    check = Checks("demo", {"q1": [spec.to_dict()]})
    report = check("q1", {"double": lambda v: 2 * v})
    assert report.passed and repr(report).startswith("q1: all 1 public test passed.")
    report = check("q1", {"double": lambda v: None})
    assert not report.passed
    assert repr(report) == "q1: 1 of 1 public test failed.\n  test 1: double(3) should be 6 (a int), got None"
    report = check("q1", {})
    assert "running your code raised NameError: name 'double' is not defined" in repr(report)
    with pytest.raises(KeyError, match="no question 'q9'"):
        check("q9", {})


# -- rules ---------------------------------------------------------------------------------------------------
A1 = {"forbid": ["torch.nn.init", "lecture_utils"], "allow": ["lecture_utils.config"]}


@pytest.mark.parametrize("source", [
    "from lecture_utils import config\nconfig.seed_everything(0)",
    "import torch\nfrom torch import nn\nfor m in model.modules():\n    m.weight.normal_(0, 0.1)",
    "x = getattr(layer, 'weight')",
    "class B(nn.Module):\n    def __init__(self):\n        super().__init__()",
    "import os\npid = os.fork()",
    "%matplotlib inline\nx = 1",
    "%time y = 2",
])
def test_honest_code_breaks_no_rule(source):
    assert rules.violations(source, A1) == []


@pytest.mark.parametrize(("source", "what"), [
    ("from torch import nn\nnn.init.kaiming_normal_(w)", "uses torch.nn.init.kaiming_normal_"),
    ("import torch\ntorch.nn.init.zeros_(w)", "uses torch.nn.init.zeros_"),
    ("from torch.nn import init as I", "imports torch.nn.init"),
    ("import torch.nn.init", "imports torch.nn.init"),
    ("from torch.nn.init import *", "imports torch.nn.init"),
    ("from lecture_utils.init import he_std", "imports lecture_utils.init.he_std"),
    ("from lecture_utils import init", "imports lecture_utils.init"),
    ("from torch.nn.modules import linear\nlinear.init.zeros_(w)", "uses .init"),
    ("from lecture_utils import config\nconfig.torch.nn.init.zeros_(w)", "uses .init"),
    ("import sys\nsys.path.insert(0, '/x')", "uses sys.path.insert"),
    ("import init", "imports init"),
    ("x = getattr(nn, 'in' + 'it')", "calls getattr() with a computed name"),
    ("x = getattr(nn, 'init')", "calls getattr(..., 'init')"),
    ("exec('print(1)')", "calls exec()"),
    ("import importlib", "imports importlib"),
    ("import sys as s\ns.modules['torch.nn.init']", "uses sys.modules"),
    ("().__class__.__base__.__subclasses__()", "uses .__base__"),
    ("import subprocess", "imports subprocess"),
    ("import os\nos.system('python -c 1')", "uses os.system"),
    ("get_ipython().run_cell(source)", "runs .run_cell()"),
    ("%run /work/lecture_utils/init.py", "runs %run"),
    ("!python -c 'import torch'", "runs .system()"),
])
def test_forbidden_and_dynamic_code_is_found_with_its_line(source, what):
    found = rules.violations(source, A1)
    hits = [v for v in found if what in v.what]
    assert hits, found
    assert 1 <= hits[0].line <= source.count("\n") + 1


def test_no_rules_no_violations():
    assert rules.violations("exec('x')", {}) == []


# -- one grading house ----------------------------------------------------------------------------------------------
def _imports(path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_grading_module_reaches_into_tools_and_the_student_side_never_imports_the_grader():
    from pathlib import Path

    import lecture_grading

    package = Path(lecture_grading.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 15
    for path in modules:
        assert not [m for m in _imports(path) if m == "tools" or m.startswith("tools.")], path
    for name in ("__init__", "checks", "expect", "wire", "protocol", "limits", "seccomp", "runner"):
        assert not [m for m in _imports(package / f"{name}.py") if m.startswith("lecture_grading.grader")], name


def test_a_students_check_loads_nothing_of_the_grader():
    import subprocess
    import sys

    code = ("import sys\nfrom lecture_grading import Checks\n"
            "check = Checks('a', {'q1': [dict(question='q1', number=1, exports=['x'], given='', call='x = f()', "
            "check='expect.equal(x, 3, \"f()\")')]})\n"
            "f = lambda: 3\nassert check('q1', globals()).passed\n"
            "print(sorted(m for m in sys.modules if m.startswith('lecture_grading')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["lecture_grading", "lecture_grading.checks", "lecture_grading.expect", "lecture_grading.wire"]


def test_the_readme_shows_the_limits_as_defined():
    from pathlib import Path

    from lecture_grading import limits

    readme = (Path(__file__).resolve().parent.parent / "assignments" / "README.md").read_text()
    assert limits.table() in readme


# -- limits, protocol, seccomp ------------------------------------------------------------------------------------------
def test_limits_have_one_definition():
    from lecture_grading.limits import GiB, Limits

    lim = Limits.from_config({"name": "a", "cell_timeout": 120, "rules": {}}, memory=2 * GiB, test_timeout=None)
    assert (lim.cell_timeout, lim.test_timeout, lim.memory) == (120.0, 60.0, 2 * GiB)
    assert lim.rlimits() == {"data": 2 * GiB, "nproc": 64, "fsize": 64 << 20, "cpu": 901}
    with pytest.raises(ValueError, match="memory must be a positive number"):
        Limits.from_config({"memory": -1})
    with pytest.raises(ValueError, match="is not a limit"):
        Limits.from_config({}, memroy=1)


def test_the_protocol_reader_takes_messages_and_blobs_and_skips_junk():
    from lecture_grading import protocol

    r = protocol.Reader()
    stream = (b"not json\n[1]\n" + protocol.answer({"id": 1, "ok": True}) + b'{"id": 5, "blob": -3}\n'
              + protocol.answer({"id": 2, "ok": True, "result": {}}, b"\x00\x01tensor"))
    got = []
    for k in range(0, len(stream), 7):  # as it comes, in pieces
        r.feed(stream[k:k + 7])
        got += list(r.messages())
    assert got == [{"id": 1, "ok": True}, {"id": 2, "ok": True, "result": {}, "blob": b"\x00\x01tensor"}]


@pytest.mark.parametrize(("exc", "limit"), [
    (MemoryError(), "memory"), (BlockingIOError(11, "Resource temporarily unavailable"), "process"),
    (OSError(27, "File too large"), "disk"), (OSError(28, "No space left on device"), "disk"),
    (RuntimeError("can't start new thread"), "process"), (ValueError("memory"), None),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                  "tried to allocate 17179869184 bytes. Error code 12 (Cannot allocate memory)"), "memory"),
    (RuntimeError("MemoryError in a message"), None)])
def test_a_limit_is_read_from_the_exception_not_its_words(exc, limit):
    from lecture_grading import protocol

    assert protocol.limit_of(exc) == limit


def test_seccomp_programs_for_both_architectures():
    from lecture_grading import seccomp

    for arch in ("x86_64", "aarch64"):
        prog = seccomp.program(seccomp.no_network() + seccomp.no_namespaces(), arch)
        assert len(prog) % 8 == 0 and len(prog) // 8 < 64
    with pytest.raises(seccomp.Unsupported):
        seccomp.program(seccomp.no_network(), "riscv64")


def test_the_network_filter_refuses_sockets_but_unix_ones():
    import subprocess
    import sys

    code = ("import socket, errno\nfrom lecture_grading import seccomp\nseccomp.install(seccomp.no_network())\n"
            "socket.socket(socket.AF_UNIX).close()\nout = []\n"
            "for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET):\n"
            "    try:\n        socket.socket(fam)\n        out.append('open')\n"
            "    except OSError as e:\n        out.append(errno.errorcode[e.errno])\nprint(out)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['EACCES', 'EACCES', 'EACCES', 'EACCES']"
