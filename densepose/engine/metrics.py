"""Training metrics: one JSON object per line (``metrics.jsonl``), a CSV mirror, TensorBoard if installed."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

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
        if self.jsonl_path.is_file():
            keep = [l for l in self.jsonl_path.read_text().splitlines() if l and json.loads(l)["iteration"] <= start_iteration]
            self.jsonl_path.write_text("".join(l + "\n" for l in keep))
        if self.csv_path.is_file():
            with open(self.csv_path, newline="") as f:
                rows = list(csv.reader(f))
            if rows:
                kept = [rows[0]] + [r for r in rows[1:] if r and float(r[0]) <= start_iteration]
                with open(self.csv_path, "w", newline="") as f:
                    csv.writer(f).writerows(kept)
