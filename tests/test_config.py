"""Configs: locked fields, contradictory presets, the validation protocol's checks."""

import ml_collections
import pytest

from actlab import config as config_lib
from actlab import presets
from actlab.sweep import SweepError, set_field
from experiments.configs import activation_comparison, dying_relu, lenet5_cifar10


def test_misspelt_field_is_refused_with_the_closest_name():
  c = lenet5_cifar10.get_config()
  with pytest.raises(AttributeError, match='Did you mean "num_epochs"'):
    c.epochs = 1
  c.num_epochs = 1  # a real field still changes
  assert c.num_epochs == 1


def test_config_is_grouped_and_every_group_is_locked():
  c = config_lib.base_config()
  assert set(config_lib.GROUPS) <= set(c)
  for group, bad in (
    ("model", "activaton"),
    ("optim", "lr"),
    ("data", "dir"),
    ("diagnostics", "on"),
  ):
    with pytest.raises(AttributeError, match="cannot be added since the config is locked"):
      setattr(c[group], bad, 1)
  # Every field of the flat config has a home, and every home is a real field.
  assert set(config_lib.FLAT_FIELDS.values()) <= set(config_lib.leaf_paths(c))


@pytest.mark.parametrize(
  "typed, meant",
  [
    ("activation", "model.activation"),  # a field of the flat config
    ("learning_rate", "optim.learning_rate"),
    ("adam_b1", "optim.b1"),
    ("optimizer", "optim.name"),
    ("optim.learning_rat", "optim.learning_rate"),
    ("model.activaton", "model.activation"),
    ("epochs", "num_epochs"),
    ("optim.lr", None),  # nothing close: no guess
    ("diagnostics", "diagnostics.enabled"),  # a group named as the flat config's field
    ("model", "model.name"),
  ],
)
def test_a_misspelt_or_ungrouped_field_names_the_real_one(typed, meant):
  c = config_lib.base_config()
  assert config_lib.closest_field(c, typed) == meant
  with pytest.raises(SweepError, match=f"Did you mean {meant!r}" if meant else "Unknown config"):
    set_field(c, typed, 1)


def test_a_flat_config_json_is_read_as_grouped():
  flat = {"activation": "tanh", "learning_rate": 0.01, "adam_eps": 1e-8, "seed": 3,
          "diagnostics": True, "data_dir": "/d", "activations": ["relu"]}  # fmt: skip
  grouped = config_lib.upgrade(flat)
  assert grouped == {
    "model": {"activation": "tanh"},
    "optim": {"learning_rate": 0.01, "eps": 1e-8},
    "data": {"data_dir": "/d"},
    "diagnostics": {"enabled": True},
    "seed": 3,
    "activations": ["relu"],
  }
  assert config_lib.upgrade(grouped) == grouped
  c = config_lib.from_saved(flat)
  assert (c.model.activation, c.model.name, c.optim.eps, c.seed) == ("tanh", "lenet5", 1e-8, 3)
  with pytest.raises(AttributeError):
    c.epochs = 1  # still locked
  with pytest.raises(config_lib.ConfigError, match="has no group"):
    config_lib.validate(ml_collections.ConfigDict(flat))


def test_contradictory_presets_are_an_error():
  with pytest.raises(config_lib.ConfigError, match="runlocal .* contradicts epochs"):
    lenet5_cifar10.get_config("act=tanh,epochs=3,runlocal")
  c = lenet5_cifar10.get_config("act=tanh,runlocal")
  assert (c.model.activation, c.num_epochs, c.data.train_split) == ("tanh", 1, "train[:10%]")
  with pytest.raises(config_lib.ConfigError, match="runlocal .* contradicts epochs"):
    dying_relu.get_config("epochs=2,runlocal")


def test_experiment_configs_are_the_packages_presets():
  assert (
    lenet5_cifar10.get_config("act=tanh,seed=3").to_dict()
    == presets.tutorial("act=tanh,seed=3").to_dict()
  )
  local = presets.runlocal(presets.validation_protocol(config_lib.base_config())).to_dict()
  study = activation_comparison.get_config("runlocal").to_dict()
  assert study.pop("activations")[0] == "relu"
  assert study == local
  assert (local["num_epochs"], local["data"]["train_split"], local["data"]["test_split"]) == (
    1,
    "train[:4500]",
    "test[:10%]",
  )
  with pytest.raises(config_lib.ConfigError, match=r"Unknown config argument\(s\) \['epoch'\]"):
    presets.tutorial("epoch=3")


def test_validation_protocol_keeps_test_out_of_selection():
  c = activation_comparison.get_config()
  assert (c.data.train_split, c.data.eval_split, c.data.test_split) == (
    "train[:45000]",
    "train[45000:]",
    "test",
  )
  config_lib.validate(c)
  local = activation_comparison.get_config("runlocal")
  assert local.data.test_split and local.data.eval_split.startswith("train[45000")
  c.data.test_split = c.data.eval_split
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
    ("optim.name", build.OPTIMIZERS),
    ("model.name", build.MODELS),
    ("model.kernel_init", build.INITIALIZERS),
    ("data.name", build.DATASETS),
    ("data.input_scaling", SCALINGS),
  ):
    for name in table:
      c = lenet5_cifar10.get_config()
      set_field(c, field, name)
      config_lib.validate(c)
    c = lenet5_cifar10.get_config()
    set_field(c, field, "not_in_the_table")
    with pytest.raises(config_lib.ConfigError, match=f"config.{field}="):
      config_lib.validate(c)


def test_a_new_table_entry_is_a_new_choice(monkeypatch):
  import optax

  from actlab import build

  monkeypatch.setitem(build.OPTIMIZERS, "lion", lambda c: optax.lion(c.optim.learning_rate))
  c = lenet5_cifar10.get_config()
  c.optim.name = "lion"
  config_lib.validate(c)
  assert build.make_optimizer(c) is not None


def test_resume_check_compares_whole_groups():
  from actlab import workdir

  saved = workdir.resolved_config(config_lib.base_config())
  c = config_lib.base_config()
  c.optim.learning_rate, c.model.kernel_init, c.data.train_split = 0.01, "he_normal", "train[:10]"
  c.diagnostics.enabled, c.data.data_dir, c.num_epochs = True, "/elsewhere", 20  # may change
  assert workdir.config_diff(saved, workdir.resolved_config(c)) == [
    "  data.train_split: 'train' -> 'train[:10]'",
    "  model.kernel_init: 'glorot_uniform' -> 'he_normal'",
    "  optim.learning_rate: 0.001 -> 0.01",
  ]
  # A config.json from before the groups is compared field by field too.
  flat = {"activation": "relu", "learning_rate": 0.001, "adam_b1": 0.5, "seed": 0}
  assert workdir.config_diff(flat, workdir.resolved_config(c)) == [
    "  optim.b1: 0.5 -> 0.9",
    "  optim.learning_rate: 0.001 -> 0.01",
  ]
