"""tools.lecture_times: reads tools.outputs' report and makes the README's min / median / max table."""

from tools import lecture_times

REPORT = """ seconds  notebook   (2 at a time)
    61.2  09_thousand_layers.ipynb  cell 30 45 s
     8.0  01_exploding_vanishing_products.ipynb
   101.5  07_batchnorm_training.ipynb  cell 12 40 s
   170.7  seconds of notebooks, 120.4 s wall clock; 0 failed
"""


def test_parse_reads_each_notebook_and_the_wall_clock():
    times, wall = lecture_times.parse(REPORT)
    assert times == {"09_thousand_layers": 61.2, "01_exploding_vanishing_products": 8.0, "07_batchnorm_training": 101.5}
    assert wall == 120.4
    assert lecture_times.parse("nothing")[1] is None


def test_table_gives_min_median_max_per_notebook_and_wall():
    runs = [({"01_a": 10.0, "02_b": 100.0}, 300.0), ({"01_a": 12.0, "02_b": 90.0}, 320.0),
            ({"01_a": 11.0, "02_b": 130.0}, 350.0)]  # fmt: skip
    lines = lecture_times.table(runs).splitlines()
    assert lines[0] == "| notebook | min | median | max (s, 3 runs) |"
    assert lines[2] == "| 01_a | 10 | 11 | 12 |" and lines[3] == "| 02_b | 90 | 100 | 130 |"
    assert lines[4] == "| **wall clock, all ten (2 at a time)** | **300** | **320** | **350** |"
