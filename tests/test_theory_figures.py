"""scripts/theory_figures.py --parts=trainability on tiny self-made data."""

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT

from actlab import models

sys.path.insert(0, str(ROOT / "scripts"))
import theory_figures  # noqa: E402


def tiny_data(n=32, dim=12, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, dim)).astype(np.float32), rng.integers(0, 10, n).astype(np.int32)


def test_untrained_accuracy_is_the_scaled_initial_networks():
  # lr = 0: what comes back is the accuracy of the network as initialised, so
  # it checks the sw2 scaling and the N(0, sb2) biases against models.MLP.
  x, y = tiny_data()
  sw2s, sb2, seed = [0.5, 3.0], 0.05, 4
  got = theory_figures.train_accuracies(x, y, "tanh", 2, sw2s, sb2, width=16, steps=2,
                                        batch=8, lr=0.0, seed=seed)
  model = models.MLP(activation="tanh", depth=2, width=16, num_classes=10,
                     kernel_init=jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal"))
  k_init, k_bias, _ = jax.random.split(jax.random.key(seed), 3)
  base = model.init(k_init, jnp.asarray(x[:1]))["params"]
  names = sorted(base)
  keys = dict(zip(names, jax.random.split(k_bias, len(names))))
  for sw2, acc in zip(sw2s, got):
    p = {n: {"kernel": math.sqrt(sw2) * base[n]["kernel"],
             "bias": math.sqrt(sb2) * jax.random.normal(keys[n], base[n]["bias"].shape)}
         for n in names}
    want = np.mean(np.argmax(model.apply({"params": p}, x), -1) == y)
    assert acc == pytest.approx(want)
  assert got[0] != got[1]  # the two scales are different networks


def test_a_shallow_tanh_net_memorises_and_the_page_counts_agreement(tmp_path):
  x, y = tiny_data()
  tr = theory_figures.trainability(tmp_path, x, y, depths=[1, 3], sw2s=[1.0, 8.0], width=32,
                                   steps=150, batch=32, lr=0.05, seed=0, overlay_points=2)
  acc = np.asarray(tr["accuracy"])
  assert acc.shape == (2, 2) and acc[0, 0] == 1.0  # depth 1 at sw2 = 1 fits 32 points
  assert (tmp_path / "trainability.png").stat().st_size > 0
  assert tr["depth_limit"][1] == pytest.approx(
      6 * theory_figures.theory.signal_propagation("tanh", 8.0, 0.05).xi_c)
  predicted = [[d <= lim for lim in tr["depth_limit"]] for d in tr["depths"]]
  trained = acc >= theory_figures.TRAINED_ACCURACY
  agree = int(np.sum(np.asarray(predicted) == trained))
  text = "\n".join(theory_figures.trainability_section(tr, tmp_path, "cmd"))
  assert f"agree in {agree} of 4 cells" in text
  assert "| 1 | 1.000 |" in text
