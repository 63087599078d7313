"""Configs: locked fields, contradictory presets, the validation protocol's checks."""

import pytest

from actlab import config as config_lib
from actlab import presets
from experiments.configs import activation_comparison, dying_relu, lenet5_cifar10


def test_misspelt_field_is_refused_with_the_closest_name():
  c = lenet5_cifar10.get_config()
  with pytest.raises(AttributeError, match='Did you mean "num_epochs"'):
    c.epochs = 1
  c.num_epochs = 1  # a real field still changes
  assert c.num_epochs == 1


def test_contradictory_presets_are_an_error():
  with pytest.raises(config_lib.ConfigError, match="runlocal .* contradicts epochs"):
    lenet5_cifar10.get_config("act=tanh,epochs=3,runlocal")
  c = lenet5_cifar10.get_config("act=tanh,runlocal")
  assert (c.activation, c.num_epochs, c.train_split) == ("tanh", 1, "train[:10%]")
  with pytest.raises(config_lib.ConfigError, match="runlocal .* contradicts epochs"):
    dying_relu.get_config("epochs=2,runlocal")


def test_experiment_configs_are_the_packages_presets():
  assert lenet5_cifar10.get_config("act=tanh,seed=3").to_dict() == presets.tutorial(
    "act=tanh,seed=3"
  ).to_dict()
  local = presets.runlocal(presets.validation_protocol(config_lib.base_config())).to_dict()
  study = activation_comparison.get_config("runlocal").to_dict()
  assert study.pop("activations")[0] == "relu"
  assert study == local
  assert (local["num_epochs"], local["train_split"], local["test_split"]) == (
    1, "train[:4500]", "test[:10%]"
  )
  with pytest.raises(config_lib.ConfigError, match=r"Unknown config argument\(s\) \['epoch'\]"):
    presets.tutorial("epoch=3")


def test_validation_protocol_keeps_test_out_of_selection():
  c = activation_comparison.get_config()
  assert (c.train_split, c.eval_split, c.test_split) == ("train[:45000]", "train[45000:]", "test")
  config_lib.validate(c)
  local = activation_comparison.get_config("runlocal")
  assert local.test_split and local.eval_split.startswith("train[45000")
  c.test_split = c.eval_split
  with pytest.raises(config_lib.ConfigError, match="also the eval split"):
    config_lib.validate(c)


def test_early_stopping_needs_a_validation_split():
  c = lenet5_cifar10.get_config()
  c.early_stopping_patience = 2
  with pytest.raises(config_lib.ConfigError, match="would select on the test set"):
    config_lib.validate(c)
  c = activation_comparison.get_config()
  c.early_stopping_patience = 2
  config_lib.validate(c)


def test_validation_accepts_exactly_the_build_tables_keys():
  from actlab import build
  from actlab.data.cifar10 import SCALINGS

  for field, table in (
    ("optimizer", build.OPTIMIZERS),
    ("model", build.MODELS),
    ("kernel_init", build.INITIALIZERS),
    ("dataset", build.DATASETS),
    ("input_scaling", SCALINGS),
  ):
    for name in table:
      c = lenet5_cifar10.get_config()
      setattr(c, field, name)
      config_lib.validate(c)
    c = lenet5_cifar10.get_config()
    setattr(c, field, "not_in_the_table")
    with pytest.raises(config_lib.ConfigError, match=f"config.{field}="):
      config_lib.validate(c)


def test_a_new_table_entry_is_a_new_choice(monkeypatch):
  import optax

  from actlab import build

  monkeypatch.setitem(build.OPTIMIZERS, "lion", lambda c: optax.lion(c.learning_rate))
  c = lenet5_cifar10.get_config()
  c.optimizer = "lion"
  config_lib.validate(c)
  assert build.make_optimizer(c) is not None
