"""`make outputs` (tools/outputs.py): what it refuses, the order it runs notebooks in, and what it writes."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tools import outputs

ROOT = Path(__file__).resolve().parent.parent


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _real_looking(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
        (folder / name).write_bytes(b"x")
    return tmp_path


def test_the_lecture_notebooks_that_read_cifar10_are_found():
    reading = {p.name[:2] for p in outputs.NOTEBOOKS if outputs.uses_data(p)}
    assert {"06", "07", "08", "09", "10"} <= reading
    assert not reading & {"01", "02", "03"}  # pure derivations: their outputs need no data


@pytest.mark.parametrize("flag", ["LECTURE_QUICK", "LECTURE_SYNTHETIC"])
def test_quick_or_synthetic_runs_are_refused(tmp_path, flag):
    why = outputs.refusal(_real_looking(tmp_path), outputs.NOTEBOOKS, {flag: "1"})
    assert why and flag in why and "Unset it" in why


def test_data_notebooks_without_real_data_are_refused(tmp_path):
    needing = [p for p in outputs.NOTEBOOKS if p.name.startswith("07")]
    assert "pass --data DIR" in outputs.refusal(None, needing, {})
    assert "lacks data_batch_1" in outputs.refusal(tmp_path, needing, {})
    folder = _real_looking(tmp_path)
    assert outputs.refusal(folder, needing, {}) is None
    (folder / "cifar-10-batches-py" / "SYNTHETIC.json").write_text("{}")
    assert "synthetic" in outputs.refusal(folder, needing, {})
    # a derivation notebook needs no data at all
    assert outputs.refusal(None, [p for p in outputs.NOTEBOOKS if p.name.startswith("01")], {}) is None


def test_main_refuses_before_running_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LECTURE_QUICK", "1")
    monkeypatch.setattr(outputs, "run_one", lambda *a: pytest.fail("must not run"))
    assert outputs.main(["--data", str(_real_looking(tmp_path))]) == 2
    assert "refused" in capsys.readouterr().err


def test_schedule_puts_the_longest_next_to_the_short_ones():
    names = [p.name[:2] for p in outputs.schedule(outputs.NOTEBOOKS)]
    assert sorted(names) == sorted(p.name[:2] for p in outputs.NOTEBOOKS)  # every notebook once
    assert names[0] == max(outputs.EXPECTED_SECONDS, key=outputs.EXPECTED_SECONDS.get)
    cost = [outputs.EXPECTED_SECONDS[n] for n in names]
    short = [c for c in cost[1:] if c < 60]
    assert cost[1 : 1 + len(short)] == sorted(short)  # the short ones right after it
    assert outputs.schedule([]) == []


def test_a_notebook_is_written_with_outputs_and_without_timestamps(tmp_path):
    src = _notebook(tmp_path / "nb.ipynb", "print(6 * 7)", "import time; time.sleep(0.1)")
    out = tmp_path / "out" / "nb.ipynb"
    path, seconds, slow = outputs.run_one(src, out, 60)
    assert path == src and seconds > 0 and slow == ""  # no cell took 10 s
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "42\n"
    assert all("execution" not in c.metadata for c in nb.cells)
    assert not list(out.parent.glob(".*.tmp"))


def test_a_failing_notebook_is_reported_and_left_unchanged(tmp_path):
    src = _notebook(tmp_path / "bad.ipynb", "print('before')", "raise ValueError('the reason')")
    before = src.read_bytes()
    path, seconds, why = outputs.run_one(src, src, 60)
    assert seconds is None and "ValueError: the reason" in why
    assert src.read_bytes() == before


def test_cell_seconds_reads_nbclient_timing():
    cell = nbformat.v4.new_code_cell("")
    assert outputs.cell_seconds(cell) is None
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00.000000Z",
                                  "shell.execute_reply": "2026-01-01T00:00:12.500000Z"}  # fmt: skip
    assert outputs.cell_seconds(cell) == pytest.approx(12.5)
