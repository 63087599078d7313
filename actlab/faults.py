"""What a run does when it is interrupted or diverges.

SIGTERM/SIGINT become a request to save and stop at the next step boundary
(`StopRequests`, `Preempted`); a non-finite loss, gradient or update is handled by
`config.nonfinite_policy` (`NonFiniteGuard`).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actlab import distributed

if TYPE_CHECKING:
  import ml_collections

  from actlab import checkpoint
  from actlab.steps import TrainState

# Codes for TrainState.nonfinite_kind, which `actlab.steps` sets at the first
# non-finite step, and what each names.
NONFINITE_NONE, NONFINITE_LOSS, NONFINITE_GRADIENT, NONFINITE_UPDATE = 0, 1, 2, 3
NONFINITE_NAMES = {
  NONFINITE_LOSS: "loss",
  NONFINITE_GRADIENT: "gradient norm",
  NONFINITE_UPDATE: "update (new parameters or optimizer state)",
}

# Exit status of a run stopped by SIGTERM/SIGINT after saving (EX_TEMPFAIL):
# cluster wrappers requeue on it, and the rerun resumes from that step.
PREEMPTED_EXIT_CODE = 75


class Preempted(Exception):
  """The run was asked to stop by a signal and saved its state first."""

  def __init__(self, step: int | None, signum: int, directory: Path | None = None):
    self.step = step
    name = signal.Signals(signum).name
    if step is None:
      msg = f"Stopped by {name} before training started; nothing needed saving."
    else:
      msg = f"Stopped by {name} after step {step}; the state is saved in {directory}."
    super().__init__(msg + " Rerun the same command to continue.")


class NonFiniteError(FloatingPointError):
  """Training produced a non-finite loss, gradient or update and the policy says stop."""


class StopRequests:
  """Turns SIGTERM/SIGINT into a flag the loop checks between steps.

  Until `arm()` (while data loads and the state is built) there is nothing to
  save: SIGINT interrupts at once (KeyboardInterrupt) and SIGTERM raises
  `Preempted` with no step. After it, a second signal while the first is
  being handled interrupts at once, except a repeated SIGTERM. Installed only
  in the main thread (Python allows handlers nowhere else).
  """

  def __init__(self):
    self.signum: int | None = None
    self.armed = False
    self._previous: dict[int, Any] = {}

  def arm(self) -> None:
    """From now on a signal asks the loop to save and stop at the next step."""
    self.armed = True

  def _handle(self, signum, frame):
    del frame
    if not self.armed:
      if signum == signal.SIGTERM:
        raise Preempted(None, signum)
      raise KeyboardInterrupt
    if self.signum is not None:
      # A scheduler's SIGTERM reaches a job's processes along several paths
      # (SLURM signals every process of the job, the batch script forwards it
      # too): a repeated SIGTERM is the same request. Any other second signal
      # (Ctrl-C again) interrupts at once.
      if signum == self.signum == signal.SIGTERM:
        return
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning("%s received: saving after this step.", signal.Signals(signum).name)

  def __enter__(self) -> StopRequests:
    if threading.current_thread() is threading.main_thread():
      for s in (signal.SIGTERM, signal.SIGINT):
        self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for s, h in self._previous.items():
      signal.signal(s, h)


class NonFiniteGuard:
  """Applies config.nonfinite_policy to the skip counts the steps report."""

  def __init__(self, config: ml_collections.ConfigDict, ckpt: checkpoint.Checkpoints):
    self.policy = config.nonfinite_policy
    self.max_skips = config.max_consecutive_skips
    self.ckpt = ckpt

  def _last_good(self) -> str:
    self.ckpt.wait()
    last = self.ckpt.latest_step()
    where = f"step {last}" if last is not None else "none yet"
    return f"The last good checkpoint ({where}) in {self.ckpt.directory} is untouched."

  def check(self, interval: dict[str, float], state: TrainState) -> None:
    if not interval.get("skipped"):
      return
    if self.policy == "stop":
      bad = int(distributed.local_value(state.first_nonfinite_step))
      kind = int(distributed.local_value(state.nonfinite_kind))
      raise NonFiniteError(
        f"Non-finite {NONFINITE_NAMES[kind]} at step {bad}; the run"
        f" stopped (config.nonfinite_policy='stop') without applying that"
        f" update. {self._last_good()} Lower config.optim.learning_rate, or set"
        " config.nonfinite_policy='skip' to skip such steps."
      )
    if interval["max_consecutive_skips"] >= self.max_skips:
      raise NonFiniteError(
        f"{interval['max_consecutive_skips']} consecutive steps had a non-finite"
        f" loss, gradient or update (limit config.max_consecutive_skips={self.max_skips});"
        f" {int(distributed.local_value(state.skipped_steps))} skipped in all. {self._last_good()}"
        " Lower config.optim.learning_rate."
      )
