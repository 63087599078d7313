"""scripts/born_dead.py: exact born-dead checks on networks small enough to reason about."""

import sys

import numpy as np
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import born_dead  # noqa: E402


def test_one_layer_relu_net_is_never_born_dead():
  # x = +1 reaches the units with positive weights, x = -1 the others.
  for width in (1, 2, 5):
    assert born_dead.born_dead_probability(1, width, 500, "he_normal", seed=0)["born_dead"] == 0


def test_width_one_net_dies_in_its_second_layer_half_the_time():
  # One unit alive after layer 1 (for +1 or -1); layer 2's weight kills it iff negative.
  row = born_dead.born_dead_probability(2, 1, 10000, "glorot_uniform", seed=1)
  assert abs(row["born_dead"] - 0.5) < 0.02  # 4 standard errors
  assert row["ci"][0] < row["born_dead"] < row["ci"][1]


def test_born_dead_grows_with_depth_and_shrinks_with_width():
  p = {
    (d, w): born_dead.born_dead_probability(d, w, 1000, "he_normal", seed=d + w)["born_dead"]
    for d in (3, 20)
    for w in (2, 8)
  }
  assert p[(20, 2)] > p[(3, 2)] and p[(3, 2)] > p[(3, 8)]
  assert p[(20, 2)] > 0.9 and p[(3, 8)] < 0.05
  np.testing.assert_allclose(
    born_dead.born_dead_probability(5, 3, 10, "he_normal", seed=0)["single_input_dies"],
    1 - (1 - 1 / 8) ** 5,
  )
