"""Progress of long work: a bar on a terminal, plain lines in a log file."""
from __future__ import annotations

import io

from densepose.progress import Progress
from densepose.synth.writer import RunSettings, generate


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_log_file_gets_a_plain_line_a_minute_and_one_at_the_end():
    log, clock = io.StringIO(), _Clock()
    with Progress(100, "synth", "img", stream=log, clock=clock) as bar:
        for _ in range(100):
            clock.t += 2.0  # 0.5 img/s: 30 images a minute
            bar.update()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0] == "synth: 30 / 100 img (0.50 img/s, about 2 min left)"
    assert len(lines) == 4 and lines[-1] == "synth: 100 / 100 img (0.50 img/s)"


def test_disabled_progress_says_nothing():
    log = io.StringIO()
    with Progress(5, "synth", "img", enabled=False, stream=log, every_s=0) as bar:
        bar.update(5)
    assert log.getvalue() == ""


def test_synth_into_a_log_file_writes_its_count_not_bar_updates(tmp_path, capsys):
    settings = RunSettings(num=2, size=64, seed=3, max_people=1, min_dp_pixels=20, plain=True)
    generate(tmp_path, settings, photos=[], progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and "synth: 2 / 2 img" in err
