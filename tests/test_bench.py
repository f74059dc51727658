"""lecture_utils.bench: both pipelines run on the same data and the last line is the promised JSON."""

import json

from lecture_utils import bench, data


def test_bench_prints_both_rates_and_json_last(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LECTURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LECTURE_SYNTHETIC", "1")
    monkeypatch.setenv("LECTURE_DEVICE", "cpu")
    monkeypatch.setattr(data, "SYNTHETIC_SIZE", (1000, 100))
    monkeypatch.setattr(data, "VAL_SIZE", 100)
    assert bench.main(["--workers", "0", "--limit", "256"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"dataloader_img_s", "tensor_img_s", "speedup"}
    assert result["dataloader_img_s"] > 0 and result["tensor_img_s"] > 0
    assert abs(result["speedup"] - result["tensor_img_s"] / result["dataloader_img_s"]) < 0.1
    assert any("DataLoader" in line for line in lines) and any("in-memory" in line for line in lines)


def test_missing_data_is_one_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LECTURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LECTURE_SYNTHETIC", "0")
    monkeypatch.setattr(data.CIFAR10, "download", lambda self: (_ for _ in ()).throw(OSError("offline")))
    assert bench.main(["--workers", "0"]) == 2
    assert "LECTURE_SYNTHETIC=1" in capsys.readouterr().err
