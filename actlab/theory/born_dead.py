"""How often a ReLU network is born dead: constant at initialisation.

Lu et al. 2019 ("Dying ReLU and Initialization: Theory and Numerical
Examples") call a ReLU network born dead when it is a constant function at
initialisation, prove that with symmetric weight and bias distributions
this becomes certain as the depth grows at fixed width, and propose a
randomized asymmetric initialisation (RAI) that prevents it: each unit gets
one of its fan_in + 1 incoming parameters (weights and bias) drawn from
Beta(2, 1), which is positive, and the others from N(0, 0.6007^2 / fan_in)
(the constants of the paper's RAI as its public implementations use them).

`born_dead_probability` estimates the probability by Monte Carlo over
`trials` networks, with a Clopper-Pearson interval:

- one input feature, zero biases, symmetric weights (the flax/Keras
  default): the network is positively homogeneous, h(x) = |x| h(sign x), so
  it is constant exactly when its last hidden layer is zero at both x = +1
  and x = -1. The check is exact; no input sampling.
- otherwise (biases, several input features, RAI): a network is counted as
  dead when its last hidden layer is the same at `inputs` points drawn
  uniformly from [-1, 1]^input_dim. Constant on the sample is necessary for
  constant everywhere, so this estimates the probability from above, and
  more points tighten it.

`born_dead_bounds(width, depth)` are bounds for the exact case, derived
here (Lu et al.'s theorem gives bounds of this form): each unit of a layer
whose input is not zero is off with probability 1/2, independently, so a
fixed input dies within L layers with probability 1 - (1 - 2^-N)^L, an
upper bound; a layer l >= 2 whose two inputs h(+1), h(-1) are non-negative
(angle <= pi/2) switches both off in a unit with probability
(pi - angle) / 2 pi >= 1/4, so 1 - (1 - 4^-N)^(L - 1) is a lower bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from actlab.theory.functions import elementwise

# fan_in, fan_out, rng, size -> kernels of shape (size, fan_in, fan_out)
INITS: dict[str, Callable[..., np.ndarray]] = {
    "he_normal": lambda rng, n_in, n_out, size: rng.normal(
        0, np.sqrt(2 / n_in), (size, n_in, n_out)
    ),
    "glorot_uniform": lambda rng, n_in, n_out, size: rng.uniform(
        -np.sqrt(6 / (n_in + n_out)), np.sqrt(6 / (n_in + n_out)), (size, n_in, n_out)
    ),
}
RAI_SIGMA = 0.6007
_CHUNK = 256  # networks simulated at once


@dataclasses.dataclass(frozen=True)
class BornDead:
  """What `born_dead_probability` returns."""

  width: int
  depth: int
  init: str
  bias_std: float
  input_dim: int
  asymmetric: bool
  trials: int
  dead: int
  probability: float
  ci: tuple[float, float]
  exact_check: bool  # True: the +-1 check; False: `inputs` sampled points
  inputs: int
  bounds: tuple[float, float] | None  # born_dead_bounds where they apply


def _relu(x: np.ndarray) -> np.ndarray:
  return np.maximum(x, 0.0)


def born_dead_bounds(width: int, depth: int) -> tuple[float, float]:
  """(lower, upper) bounds on P(born dead) for one input, zero biases and
  symmetric continuous weights (derived in the module docstring)."""
  lower = 1.0 - (1.0 - 4.0**-width) ** max(depth - 1, 0)
  upper = 1.0 - (1.0 - 2.0**-width) ** depth
  return lower, upper


def _rai(rng: np.random.Generator, n_in: int, n_out: int, size: int):
  """Kernels and biases of RAI: per unit, one of n_in + 1 parameters ~ Beta(2, 1)."""
  v = rng.normal(0.0, RAI_SIGMA / np.sqrt(n_in), (size, n_out, n_in + 1))
  pick = rng.integers(0, n_in + 1, (size, n_out))
  np.put_along_axis(v, pick[..., None], rng.beta(2.0, 1.0, (size, n_out, 1)), axis=-1)
  return np.swapaxes(v[..., :n_in], 1, 2), v[..., n_in]


def _layer(rng, init, n_in, n_out, size, bias_std, asymmetric):
  if asymmetric:
    return _rai(rng, n_in, n_out, size)
  w = INITS[init](rng, n_in, n_out, size)
  b = rng.normal(0.0, bias_std, (size, n_out)) if bias_std > 0 else np.zeros((size, n_out))
  return w, b


def born_dead_probability(
    width: int,
    depth: int,
    *,
    trials: int = 1000,
    init: str = "he_normal",
    bias_std: float = 0.0,
    input_dim: int = 1,
    inputs: int = 256,
    asymmetric: bool = False,
    seed: int = 0,
    confidence: float = 0.95,
    activation: Any = "relu",
) -> BornDead:
  """The fraction of `trials` random networks (`depth` hidden layers of
  `width` units, `input_dim` inputs) that are constant at initialisation,
  with its Clopper-Pearson interval.

  Weights from `init` ('he_normal' or 'glorot_uniform'), biases from
  N(0, bias_std^2); `asymmetric=True` draws both by RAI instead.
  `activation` is relu by default; any other elementwise activation (spec
  or function) is checked on sampled inputs, never by the exact +-1 rule.
  """
  if init not in INITS:
    raise ValueError(f"init must be one of {sorted(INITS)}, got {init!r}.")
  for name, v in (("width", width), ("depth", depth), ("trials", trials),
                  ("input_dim", input_dim), ("inputs", inputs)):
    if int(v) != v or v < 1:
      raise ValueError(f"{name} must be a positive integer, got {v!r}.")
  if not bias_std >= 0:
    raise ValueError(f"bias_std is a standard deviation >= 0, got {bias_std!r}.")
  rng = np.random.default_rng(seed)
  is_relu = isinstance(activation, str) and activation == "relu"
  phi = _relu if is_relu else elementwise(activation).f
  exact = is_relu and input_dim == 1 and bias_std == 0 and not asymmetric
  dead = 0
  for start in range(0, trials, _CHUNK):
    size = min(_CHUNK, trials - start)
    if exact:
      x = np.broadcast_to(np.array([[1.0], [-1.0]]), (size, 2, 1))
    else:
      x = rng.uniform(-1.0, 1.0, (size, inputs, input_dim))
    h, n_in = x, input_dim
    for _ in range(depth):
      w, b = _layer(rng, init, n_in, width, size, bias_std, asymmetric)
      h = phi(np.einsum("tbi,tij->tbj", h, w) + b[:, None, :])
      n_in = width
    if exact:
      dead += int(np.sum(~np.any(h > 0, axis=(1, 2))))
    else:
      dead += int(np.sum(np.all(h == h[:, :1, :], axis=(1, 2))))
  ci = stats.binomtest(dead, trials).proportion_ci(confidence_level=confidence)
  return BornDead(
      width=int(width), depth=int(depth), init=init, bias_std=float(bias_std),
      input_dim=int(input_dim), asymmetric=bool(asymmetric), trials=int(trials),
      dead=dead, probability=dead / trials, ci=(float(ci.low), float(ci.high)),
      exact_check=exact, inputs=2 if exact else int(inputs),
      bounds=born_dead_bounds(width, depth) if exact else None,
  )
