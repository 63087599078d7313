"""Facts recorded for every activation, and what `describe` returns.

The definitions the tests hold every entry to:

- range: (inf f, sup f) over the real line, infinities allowed; whether an
  end is attained is not recorded.
- monotonic: f is non-decreasing everywhere.
- smoothness: 'discontinuous', 'C0', 'C1', 'C2' or 'Cinf' (the highest k for
  which f is k times continuously differentiable).
- zero_centred: f(0) = 0 and f takes both signs, so a layer's outputs can
  average to zero.
- max_slope: sup |f'(x)| (inf when unbounded), and max_slope_at, a point
  where it is attained or approached (+-inf for a limit; a kink for a
  one-sided limit there).
- saturates: on which sides f'(x) -> 0: 'none', 'left', 'right' or 'both'.
"""

from __future__ import annotations

import dataclasses
import math

SMOOTHNESS = ("discontinuous", "C0", "C1", "C2", "Cinf")
SATURATION = ("none", "left", "right", "both")

inf = math.inf


@dataclasses.dataclass(frozen=True)
class Facts:
  """Analytic facts about an activation, as registered."""

  range: tuple[float, float]
  monotonic: bool
  smoothness: str
  zero_centred: bool
  max_slope: float
  max_slope_at: float
  saturates: str

  def __post_init__(self):
    if self.smoothness not in SMOOTHNESS:
      raise ValueError(
          f"smoothness must be one of {SMOOTHNESS}, got {self.smoothness!r}."
      )
    if self.saturates not in SATURATION:
      raise ValueError(
          f"saturates must be one of {SATURATION}, got {self.saturates!r}."
      )
    if not self.range[0] <= self.range[1]:
      raise ValueError(f"range must be (low, high), got {self.range!r}.")


@dataclasses.dataclass(frozen=True)
class Description:
  """What `actlab.activations.describe(spec)` returns."""

  name: str
  spec: str
  kind: str
  summary: str
  aliases: tuple[str, ...]
  learnable: bool
  kinks: dict[float, float]
  width_multiplier: int
  range: tuple[float, float]
  monotonic: bool
  smoothness: str
  zero_centred: bool
  max_slope: float
  max_slope_at: float
  saturates: str
