"""Training metrics: one JSON object per line (``metrics.jsonl``), a CSV mirror, TensorBoard if installed."""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from densepose.cache import atomic_write_bytes

log = logging.getLogger("densepose.train")


class MetricsWriter:
    """Appends ``{"iteration": i, name: value, ...}`` records; only rank 0 creates one.

    The CSV gets a column per metric seen in its first record; later new metrics go to the JSONL
    (and TensorBoard) only, so the CSV stays rectangular. Resuming a run appends to both files,
    after dropping records past the resumed iteration (they belong to the abandoned future).
    """

    def __init__(self, run_dir: str | Path, start_iteration: int = 0):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.run_dir / "metrics.jsonl"
        self.csv_path = self.run_dir / "metrics.csv"
        self._truncate(start_iteration)
        self._csv_fields: list[str] | None = None
        if self.csv_path.is_file():
            with open(self.csv_path, newline="") as f:
                header = next(csv.reader(f), None)
            self._csv_fields = header or None
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_iteration or None)
        except ImportError:
            log.info("tensorboard is not installed; metrics go to metrics.jsonl and metrics.csv only")

    def write(self, iteration: int, values: dict[str, float]) -> None:
        record = {"iteration": iteration, **{k: float(v) for k, v in values.items()}}
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._csv_fields is None:
            self._csv_fields = list(record)
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(self._csv_fields)
        with open(self.csv_path, "a", newline="") as f:
            csv.writer(f).writerow([record.get(k, "") for k in self._csv_fields])
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, float(v), iteration)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    def _truncate(self, start_iteration: int) -> None:
        """Keep the records up to ``start_iteration``; a torn record (a run killed mid-write) is dropped."""
        if self.jsonl_path.is_file():
            keep = [l for l in self.jsonl_path.read_text(errors="replace").splitlines()
                    if _record_iteration(l) is not None and _record_iteration(l) <= start_iteration]
            atomic_write_bytes(self.jsonl_path, "".join(l + "\n" for l in keep).encode())
        if self.csv_path.is_file():
            with open(self.csv_path, newline="", errors="replace") as f:
                rows = list(csv.reader(f))
            if rows:
                width = len(rows[0])
                kept = [rows[0]] + [r for r in rows[1:] if len(r) == width and _number(r[0]) is not None
                                    and _number(r[0]) <= start_iteration]
                buf = io.StringIO()
                csv.writer(buf).writerows(kept)
                atomic_write_bytes(self.csv_path, buf.getvalue().encode())


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _record_iteration(line: str) -> int | None:
    """The iteration of one metrics.jsonl line, or None for a torn or foreign line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    iteration = record.get("iteration") if isinstance(record, dict) else None
    return iteration if isinstance(iteration, int) and not isinstance(iteration, bool) else None


def format_log_line(iteration: int, max_iter: int, metrics: dict[str, float]) -> str:
    """``iter 40/2250  loss 1.234 (rpn_cls 0.5 ... densepose_I 0.3)  lr 0.01  0.52 s/it  eta 0:19:10``
    for the log: the total and each ``loss_*`` term (prefix dropped), learning rate, time per step."""
    losses = " ".join(f"{k[len('loss_'):]} {v:.3g}" for k, v in metrics.items() if k.startswith("loss_"))
    seconds = int(metrics.get("time", 0.0) * max(max_iter - iteration, 0))
    eta = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return (f"iter {iteration}/{max_iter}  loss {metrics.get('loss', float('nan')):.4g} ({losses})  "
            f"lr {metrics.get('lr', 0.0):.3g}  {metrics.get('time', 0.0):.2f} s/it  eta {eta}")
