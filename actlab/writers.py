"""Where numbers go: metrics.jsonl (the source of truth), TensorBoard, console."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO


def _plain(value: Any) -> Any:
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if hasattr(value, "item"):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/inf; keep them readable
  return value


class MetricsWriter:
  """Appends one JSON object per event to `workdir/metrics.jsonl`.

  Also mirrors scalars to TensorBoard event files in `workdir` when
  tensorboardX is importable. Only the lead process should construct one.
  """

  def __init__(self, workdir: str | os.PathLike, tensorboard: bool = True):
    self.path = Path(workdir) / "metrics.jsonl"
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._file = open(self.path, "a", buffering=1)
    self._tb = None
    if tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top

      self._tb = SummaryWriter(os.fspath(workdir), flush_secs=30)

  def write(self, split: str, step: int, epoch: int, **scalars: Any) -> None:
    record = {"split": split, "step": int(step), "epoch": int(epoch)}
    record.update({k: _plain(v) for k, v in scalars.items()})
    self._file.write(json.dumps(record) + "\n")
    if self._tb is not None:
      for k, v in record.items():
        if k in ("split", "step", "epoch"):
          continue
        for tag, x in v.items() if isinstance(v, dict) else [("", v)]:
          if isinstance(x, (int, float)):
            self._tb.add_scalar(f"{split}/{k}" + (f"/{tag}" if tag else ""), x, int(step))

  def close(self) -> None:
    self._file.close()
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, Any]]:
  """All records of `workdir/metrics.jsonl`, in order."""
  with open(Path(workdir) / "metrics.jsonl") as f:
    return [json.loads(line) for line in f if line.strip()]


class ConsoleProgress:
  """Keras-style epoch lines, with a live progress bar on a terminal."""

  def __init__(
    self,
    num_epochs: int,
    steps_per_epoch: int,
    stream: TextIO | None = None,
    enabled: bool = True,
  ):
    self.num_epochs = num_epochs
    self.steps = steps_per_epoch
    self.stream = (stream or sys.stdout) if enabled else open(os.devnull, "w")  # noqa: SIM115
    self.live = self.stream.isatty()
    self._start = time.perf_counter()

  def start_epoch(self, epoch: int) -> None:
    self._start = time.perf_counter()
    self.stream.write(f"Epoch {epoch}/{self.num_epochs}\n")
    self.stream.flush()

  def _bar(self, done: int, width: int = 30) -> str:
    filled = width * done // self.steps
    head = ">" if done < self.steps else "="
    return "[" + "=" * max(filled - 1, 0) + (head if filled else "") + "." * (width - filled) + "]"

  def update(self, done: int, loss: float, acc: float) -> None:
    if not self.live:
      return
    elapsed = time.perf_counter() - self._start
    self.stream.write(
      f"\r{done}/{self.steps} {self._bar(done)} - {elapsed:.0f}s"
      f" - loss: {loss:.4f} - acc: {acc:.4f}"
    )
    self.stream.flush()

  def end_epoch(self, seconds: float, **metrics: float) -> None:
    ms = 1000.0 * seconds / max(self.steps, 1)
    parts = " - ".join(f"{k}: {v:.4f}" for k, v in metrics.items())
    self.stream.write(
      ("\r" if self.live else "")
      + f"{self.steps}/{self.steps} {self._bar(self.steps)} - {seconds:.0f}s"
      f" {ms:.0f}ms/step - {parts}\n"
    )
    self.stream.flush()
