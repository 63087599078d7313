"""Where numbers go: metrics.jsonl (the source of truth), TensorBoard, console."""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import sys
import threading
import time
import warnings
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


class WriterError(OSError):
  """metrics.jsonl or the TensorBoard events could not be written."""


def _unwritable(what: Path, e: OSError) -> WriterError:
  from actlab.workdir import free_space  # pylint: disable=g-import-not-at-top

  return WriterError(
    f"Could not write {what}: {e.strerror or e}. {free_space(what.parent)} Free space (or"
    " fix the folder) and rerun the same command: the run resumes from its last"
    " checkpoint, which is intact."
  )


class _TensorBoard:
  """TensorBoard scalars written by a background thread that never blocks training.

  tensorboardX's own writer blocks the caller for ever once its thread dies
  (a full disk, for example). Here the training thread only puts into an
  unbounded queue; a write error ends the thread and is re-raised by `check`.
  """

  def __init__(self, logdir: Path, flush_secs: float = 30.0):
    self.logdir = logdir
    self._queue: queue.SimpleQueue = queue.SimpleQueue()
    self._flush_secs = flush_secs
    self.error: OSError | None = None
    self._thread = threading.Thread(target=self._drain, name="tensorboard", daemon=True)
    self._thread.start()

  def _drain(self) -> None:
    from tensorboardX.event_file_writer import EventsWriter  # pylint: disable=g-import-not-at-top
    from tensorboardX.proto.event_pb2 import Event  # pylint: disable=g-import-not-at-top
    from tensorboardX.summary import scalar  # pylint: disable=g-import-not-at-top

    next_flush = time.monotonic() + self._flush_secs
    try:
      self._events = EventsWriter(os.fspath(self.logdir / "events"))
      while True:
        try:
          item = self._queue.get(timeout=max(next_flush - time.monotonic(), 0.01))
        except queue.Empty:
          item = ()
        if item is None:
          break
        if item:
          tag, value, step, wall = item
          self._events.write_event(Event(summary=scalar(tag, value), step=step, wall_time=wall))
        if time.monotonic() >= next_flush:
          self._events.flush()
          next_flush = time.monotonic() + self._flush_secs
      self._events.close()
    except OSError as e:
      self.error = e

  def add_scalar(self, tag: str, value: float, step: int) -> None:
    self._queue.put((tag, value, step, time.time()))

  def check(self) -> None:
    if self.error is not None:
      raise _unwritable(self.logdir / "events.out.tfevents.*", self.error)

  def close(self, timeout: float = 30.0) -> None:
    self._queue.put(None)
    self._thread.join(timeout)
    if self._thread.is_alive():
      logging.warning("TensorBoard events in %s are still being written; not waiting.", self.logdir)


def _repair_tail(path: Path) -> None:
  """Cuts a torn last line (a write interrupted by a kill or a full disk)."""
  try:
    with open(path, "rb+") as f:
      size = f.seek(0, os.SEEK_END)
      if size == 0:
        return
      f.seek(size - 1)
      if f.read(1) == b"\n":
        return
      block = 1 << 16
      end = size
      while end > 0:
        start = max(0, end - block)
        f.seek(start)
        newline = f.read(end - start).rfind(b"\n")
        if newline >= 0:
          keep = start + newline + 1
          break
        end = start
      else:
        keep = 0
      f.truncate(keep)
    logging.warning("Dropped a torn last line (%d bytes) of %s.", size - keep, path)
  except FileNotFoundError:
    pass


class MetricsWriter:
  """Appends one JSON object per event to `workdir/metrics.jsonl`.

  Also mirrors scalars to TensorBoard event files in `workdir` when
  `tensorboard`, from a background thread (see `_TensorBoard`). A torn last
  line left by a killed run is cut before appending. A write that fails (a
  full disk) raises `WriterError` naming the file and the free space. Only
  the lead process should construct one.
  """

  def __init__(self, workdir: str | os.PathLike, tensorboard: bool = True):
    self.path = Path(workdir) / "metrics.jsonl"
    try:
      self.path.parent.mkdir(parents=True, exist_ok=True)
      _repair_tail(self.path)
      self._file = open(self.path, "a", buffering=1)  # noqa: SIM115
      self._tb = _TensorBoard(self.path.parent) if tensorboard else None
    except OSError as e:
      raise _unwritable(self.path, e) from e

  def write(self, split: str, step: int, epoch: int, **scalars: Any) -> None:
    record = {"split": split, "step": int(step), "epoch": int(epoch)}
    record.update({k: _plain(v) for k, v in scalars.items()})
    try:
      self._file.write(json.dumps(record) + "\n")
    except OSError as e:
      raise _unwritable(self.path, e) from e
    if self._tb is not None:
      self._tb.check()
      for k, v in record.items():
        if k in ("split", "step", "epoch"):
          continue
        for tag, x in v.items() if isinstance(v, dict) else [("", v)]:
          if isinstance(x, (int, float)):
            self._tb.add_scalar(f"{split}/{k}" + (f"/{tag}" if tag else ""), x, int(step))

  def close(self) -> None:
    """Closes both files; a failure here is logged, never raised over another error."""
    try:
      self._file.close()
    except OSError as e:
      logging.error("%s", _unwritable(self.path, e))
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, Any]]:
  """The records of `workdir/metrics.jsonl`, one per (split, step), in order.

  A resumed run logs again the steps after its last checkpoint; the newest
  record of each (split, step) wins and sits where it was last written. A
  line that is not JSON (the torn tail of a killed run) is skipped with a
  warning naming the file and line.
  """
  path = Path(workdir) / "metrics.jsonl"
  latest: dict[tuple[Any, Any], tuple[int, dict[str, Any]]] = {}
  with open(path, encoding="utf-8", errors="replace") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        warnings.warn(f"{path}:{number}: skipped a line that is not JSON ({e}).", stacklevel=2)
        continue
      if not isinstance(record, dict):
        warnings.warn(f"{path}:{number}: skipped a line that is not a record.", stacklevel=2)
        continue
      latest[(record.get("split"), record.get("step"))] = (number, record)
  return [record for _, record in sorted(latest.values(), key=lambda nr: nr[0])]


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
