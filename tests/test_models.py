"""LeNet5: the tutorial's architecture, parameter counts and activation field."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actlab import activations, models

TUTORIAL_TABLE = [
    ("conv2d", (None, 32, 32, 6), 456),
    ("max_pooling2d", (None, 16, 16, 6), 0),
    ("conv2d_1", (None, 16, 16, 16), 2416),
    ("max_pooling2d_1", (None, 8, 8, 16), 0),
    ("conv2d_2", (None, 8, 8, 120), 48120),
    ("flatten", (None, 7680), 0),
    ("dense", (None, 84), 645204),
    ("dense_1", (None, 10), 850),
]


def test_lenet5_matches_the_tutorials_keras_summary():
  model = models.LeNet5()
  assert models.layer_table(model, (32, 32, 3)) == TUTORIAL_TABLE
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
  assert models.count_params(params) == 697_046
  text = models.summary(model, (32, 32, 3))
  assert "Total params: 697,046" in text and "645,204" in text


def test_logits_shape_and_dtype():
  model = models.LeNet5()
  x = jnp.ones((4, 32, 32, 3))
  params = model.init(jax.random.key(0), x)
  assert model.apply(params, x).shape == (4, 10)
  bf16 = models.LeNet5(dtype=jnp.bfloat16)
  assert bf16.apply(params, x).dtype == jnp.float32  # logits in float32


@pytest.mark.parametrize("name", activations.names())
def test_activation_is_a_field_and_is_used(name):
  # Scaled so that some pre-activations pass 6, where relu6 parts from relu.
  x = 4 * jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  base = models.LeNet5()
  params = base.init(jax.random.key(0), x)
  out = models.LeNet5(activation=activations.get(name)).apply(params, x)
  if name != "exponential":  # exp through four layers overflows float32
    assert np.isfinite(np.asarray(out)).all()
  if name != "relu":
    assert not np.allclose(out, base.apply(params, x))


def test_identity_lenet5_is_positively_homogeneous_at_init():
  # Biases start at zero; with the identity every layer is linear and
  model = models.LeNet5(activation=activations.get("identity"))
  x = jax.random.normal(jax.random.key(2), (1, 32, 32, 3))
  params = model.init(jax.random.key(0), x)
  y0 = model.apply(params, jnp.zeros_like(x))
  y1 = model.apply(params, x)
  y2 = model.apply(params, 2 * x)
  # max-pool commutes with positive scaling, so f(2x) = 2 f(x).
  np.testing.assert_allclose(y2 - y0, 2 * (y1 - y0), rtol=1e-4, atol=1e-4)
