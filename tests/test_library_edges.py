"""What a new user runs into first: input layouts, learnable activations
called like functions, misspelt config flags."""

import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from actlab import activations, models
from actlab.cli import train as train_cli


def lenet_output(shape):
  """LeNet5's output shape for inputs of `shape`, traced only (nothing runs)."""
  model = models.LeNet5()
  init = lambda x: model.init_with_output(jax.random.key(0), x)[0]  # noqa: E731
  return jax.eval_shape(init, jax.ShapeDtypeStruct(shape, jnp.float32)).shape


def test_channels_first_input_is_refused_with_the_transpose():
  with pytest.raises(ValueError, match=r"channels-first \(NCHW\).*transpose\(0, 2, 3, 1\)"):
    lenet_output((2, 3, 32, 32))


def test_one_unbatched_image_is_refused_not_split():
  with pytest.raises(ValueError, match=r"one image of shape \(32, 32, 3\).*x\[None\]"):
    lenet_output((32, 32, 3))
  assert lenet_output((1, 32, 32, 3)) == (1, 10)


class Head(nn.Module):
  activation: object

  @nn.compact
  def __call__(self, x):
    return activations.get(self.activation)(nn.Dense(4)(x))


@pytest.mark.parametrize("activation", [nn.PReLU, "prelu", "prelu(mode='shared')",
                                        activations.PReLU, "swish_beta"])
def test_learnable_activation_from_get_applies_inside_a_model(activation):
  x = -jnp.ones((2, 3))
  variables = Head(activation).init(jax.random.key(0), x)
  names = set(variables["params"])
  assert len(names) == 2 and "Dense_0" in names, names  # the activation's own params
  y = Head(activation).apply(variables, x)
  assert y.shape == (2, 4)


def test_learnable_activation_outside_a_model_says_where_it_belongs():
  for activation in (nn.PReLU, "prelu"):
    with pytest.raises(ValueError, match="learnable activation.*@nn.compact.*actlab.nnx"):
      activations.get(activation)(jnp.ones((2, 3)))
  # Still a factory for models: one module per site, and the same object back.
  assert activations.get(nn.PReLU) is activations.get(nn.PReLU)
  assert isinstance(activations.get("prelu")(name="site"), activations.PReLU)
  assert activations.spec_of(activations.get(nn.PReLU)) == "flax.linen.activation:PReLU"


@pytest.mark.parametrize(("extra", "named"), [
    (["--config.optim.learning_rate=0.1", "--config.optim.learning_rat=0.01"],
     "'optim.learning_rat'"),
    (["--config.optim.learning_rat=0.01", "--config.optim.learning_rate=0.1"],
     "'optim.learning_rat'"),
    (["--config.model.activation=tanh", "--config.modle.depth=3"], "'modle.depth'"),
])
def test_misspelt_flag_is_the_one_named(extra, named):
  argv = ["actlab-train", "--config=experiments/configs/lenet5_cifar10.py",
          "--workdir=/tmp/unused", *extra]
  try:
    with pytest.raises(SystemExit) as e:
      train_cli.parse_flags(argv)
  finally:
    train_cli.FLAGS.unparse_flags()
  assert f"no field {named}" in str(e.value), str(e.value)
  if "learning_rat'" in named:
    assert "did you mean --config.optim.learning_rate?" in str(e.value)


def test_misspelt_flag_is_named_by_the_command(tmp_path):
  # The command's own parse (absl, then ml_collections applying overrides in
  # order) takes another path than a second parse in this process.
  config = Path(__file__).resolve().parents[1] / "experiments/configs/lenet5_cifar10.py"
  out = subprocess.run(
      [sys.executable, "-m", "actlab.cli.train", f"--config={config}", "--workdir=run",
       "--config.optim.learning_rate=0.1", "--config.optim.learning_rat=0.01"],
      cwd=tmp_path, capture_output=True, text=True, timeout=300,
  )
  assert out.returncode == 1
  assert "no field 'optim.learning_rat'; did you mean --config.optim.learning_rate?" in (
      out.stderr), out.stderr[-2000:]
