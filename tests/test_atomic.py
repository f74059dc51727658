"""lecture_utils.atomic: a target is the old version or the new one, never a part; an error removes the temporary;
the temporaries of killed writers are removed by the next writer, a live writer's are kept.  (A real SIGKILL mid-write
is tested where it matters: tests/test_checkpoints.py and tests/test_synthetic.py.)"""

import os
import threading

import pytest

from lecture_utils import atomic

DEAD_PID = 2**22 + 12345  # above pid_max on Linux by default: no such process


def test_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "scores.csv"
    assert atomic.write_text(path, "a,b\r\n1,2\n") == path  # the folder is created
    assert path.read_bytes() == b"a,b\r\n1,2\n"  # newlines as given
    atomic.write_text(path, "ü")
    assert path.read_text(encoding="utf-8") == "ü"
    assert sorted(p.name for p in path.parent.iterdir()) == ["scores.csv"]


def test_the_temporary_is_named_for_the_process_next_to_the_target(tmp_path):
    with atomic.replace(tmp_path / "c.pt") as tmp:
        assert tmp == tmp_path / f".c.pt.{os.getpid()}.tmp" == atomic.temporary(tmp_path / "c.pt")
        tmp.write_bytes(b"new")
        assert not (tmp_path / "c.pt").exists()  # not before the block ends
    assert (tmp_path / "c.pt").read_bytes() == b"new"


def test_an_error_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):  # even a BaseException (Ctrl-C) cleans up
        with atomic.replace(path) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_a_folder_replaces_a_folder(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "old").write_text("1")
    with atomic.replace(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("2")
    assert [p.name for p in target.iterdir()] == ["new"]
    with pytest.raises(RuntimeError):
        with atomic.replace(target) as tmp:
            tmp.mkdir()
            (tmp / "half").write_text("3")
            raise RuntimeError("disk full")
    assert [p.name for p in target.iterdir()] == ["new"] and sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_dead_writers_temporaries_go_live_ones_stay(tmp_path):
    live, dead = atomic.temporary(tmp_path / "r.csv", pid=1), atomic.temporary(tmp_path / "r.csv", pid=DEAD_PID)
    junk = tmp_path / ".r.csv.not-a-pid.tmp"  # no pid in the name: no writer can own it
    other = atomic.temporary(tmp_path / "other.csv", pid=DEAD_PID)  # another target's: not ours to judge
    for p in (live, dead, junk, other):
        p.write_text("x")
    stale_folder = atomic.temporary(tmp_path / "r.csv", pid=DEAD_PID + 1)
    stale_folder.mkdir()
    (stale_folder / "part").write_text("x")
    atomic.write_text(tmp_path / "r.csv", "ok")
    assert live.exists() and other.exists() and not dead.exists() and not junk.exists()
    assert not stale_folder.exists()
    assert atomic.writer_alive("1") and atomic.writer_alive(str(os.getpid()))
    assert not atomic.writer_alive(str(DEAD_PID)) and not atomic.writer_alive("k1ll3d")


def test_threads_of_one_process_never_share_a_temporary(tmp_path):
    """A grader writes its CSV from every worker thread as each submission finishes: the same target, at once."""
    path, errors = tmp_path / "scores.csv", []

    def writer(k):
        try:
            for _ in range(200):
                atomic.write_text(path, f"{k}\n" * 1000)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_text() in {f"{k}\n" * 1000 for k in range(4)}  # one writer's whole file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]
    dead_thread_tmp = tmp_path / f".scores.csv.{DEAD_PID}-12345.tmp"  # a killed process's worker thread
    dead_thread_tmp.write_text("x")
    atomic.write_text(path, "ok")
    assert not dead_thread_tmp.exists()
