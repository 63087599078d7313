"""Research code's own parts in `train_and_evaluate`: a flax model, an optax
transformation, in-memory arrays or a TFDS name; recorded and resumed."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds
from conftest import set_fields

from actlab import build, presets, train, writers
from actlab.workdir import WorkdirError


class TwoLayer(nn.Module):
  """A research project's own network: no `train` argument, 4 classes."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(16)(x.reshape((x.shape[0], -1))))
    return nn.Dense(4)(x)


def arrays(seed=0, n_train=32, n_eval=16, shape=(8, 8, 3)):
  rng = np.random.default_rng(seed)
  split = lambda n: (  # noqa: E731
    rng.integers(0, 256, (n, *shape), dtype=np.uint8),
    rng.integers(0, 4, (n,)),
  )
  return {"train": split(n_train), "eval": split(n_eval)}


def tiny_config(**overrides):
  c = presets.tutorial()
  fields = dict(batch_size=8, num_epochs=2, log_every_steps=2, input_scaling="unit")
  return set_fields(c, **(fields | overrides))


def _config_json(workdir):
  return json.loads((workdir / "config.json").read_text())


def test_own_model_optimizer_and_arrays_train_record_and_resume(tmp_path):
  data = arrays()
  parts = dict(model=TwoLayer(), tx=optax.sgd(0.1), data=data)
  state = train.train_and_evaluate(tiny_config(), tmp_path / "a", **parts)
  assert (int(state.step), int(state.epoch)) == (2 * 32 // 8, 2)
  assert state.params["Dense_1"]["kernel"].shape == (16, 4)
  records = writers.read_metrics(tmp_path / "a")
  evals = [r for r in records if r["split"] == "eval"]
  assert [r["epoch"] for r in evals] == [1, 2] and all(np.isfinite(r["loss"]) for r in evals)
  trains = [r["loss"] for r in records if r["split"] == "train"]
  assert trains[-1] < trains[0], trains  # sgd on the same 32 examples

  custom = _config_json(tmp_path / "a")["custom"]
  assert custom["model"]["class"].endswith("TwoLayer")
  assert custom["model"]["parameters"] == 8 * 8 * 3 * 16 + 16 + 16 * 4 + 4
  assert custom["optimizer"] == {"state": "EmptyState, EmptyState", "constants": [-0.1]}
  assert custom["data"]["train"]["examples"] == 32 and custom["data"]["num_classes"] == 4

  # Resuming with the same parts continues bit for bit.
  resumed = train.train_and_evaluate(tiny_config(num_epochs=3), tmp_path / "a", **parts)
  straight = train.train_and_evaluate(tiny_config(num_epochs=3), tmp_path / "b", **parts)
  assert int(resumed.step) == 12
  jax.tree.map(np.testing.assert_array_equal, resumed.params, straight.params)
  config, restored = train.restore_run(tmp_path / "a", model=TwoLayer(), tx=optax.sgd(0.1))
  assert int(restored.step) == 12 and config.num_epochs == 3
  with pytest.raises(Exception, match="pass it as restore_run"):
    train.restore_run(tmp_path / "a")

  # Other parts do not continue the run: another optimizer, other data, the
  # config's model instead of the caller's.
  for other, words in [
    (dict(parts, tx=optax.adam(1e-3)), "custom.optimizer"),
    (dict(parts, data=arrays(seed=1)), "custom.data"),
    (dict(tx=parts["tx"], data=data), "custom.model"),
  ]:
    with pytest.raises(WorkdirError, match=words):
      train.train_and_evaluate(tiny_config(num_epochs=4), tmp_path / "a", **other)
  assert int(train.restore_run(tmp_path / "a", model=TwoLayer(), tx=optax.sgd(0.1))[1].step) == 12


def test_config_model_on_own_arrays_gets_its_classes_from_the_labels(tmp_path):
  c = tiny_config(model="mlp", mlp_depth=1, mlp_width=8, num_epochs=1)
  data = arrays()
  data["test"] = arrays(seed=2, n_eval=8)["eval"]
  state = train.train_and_evaluate(c, tmp_path / "wd", data=data)
  assert state.params["layer_01"]["kernel"].shape == (8, 4)
  saved = _config_json(tmp_path / "wd")
  assert saved["custom"]["model"] == "config" and saved["custom"]["optimizer"] == "config"
  assert set(saved["custom"]["data"]) == {"num_classes", "train", "eval", "test"}
  assert [r["split"] for r in writers.read_metrics(tmp_path / "wd")].count("test") == 1
  assert int(train.restore_run(tmp_path / "wd")[1].step) == 4


def test_a_tfds_name_replaces_the_config_dataset(tmp_path):
  c = tiny_config(model="mlp", mlp_depth=1, mlp_width=8, num_epochs=1, download=False)
  with tfds.testing.mock_data(num_examples=16):
    state = train.train_and_evaluate(c, tmp_path / "wd", data="mnist")
  assert state.params["layer_00"]["kernel"].shape == (28 * 28 * 1, 8)
  assert _config_json(tmp_path / "wd")["custom"]["data"]["tfds"] == "mnist"


@pytest.mark.parametrize(
  "data, words",
  [
    ({"train": arrays()["train"]}, "expected 'train' and 'eval'"),
    ({**arrays(), "valid": arrays()["eval"]}, "expected 'train' and 'eval'"),
    ((arrays()["train"],), r"\(train, eval\[, test\]\)"),
    ({"train": arrays()["train"], "eval": arrays(shape=(4, 4, 3))["eval"]}, "differ in shape"),
    ({"train": (np.zeros((4, 8, 8, 3)), np.zeros(4)), "eval": arrays()["eval"]}, "integers"),
    ({"train": (np.zeros((4, 8, 8)), np.zeros(4, int)), "eval": arrays()["eval"]}, "shapes"),
  ],
)
def test_bad_in_memory_data_is_refused_with_what_was_expected(data, words):
  with pytest.raises(ValueError, match=words):
    build.in_memory_splits(data)


def test_in_memory_splits_as_a_tuple_and_models_without_train():
  train_split, eval_split, test_split = build.in_memory_splits(
    (arrays()["train"], arrays()["eval"])
  )
  assert test_split is None and len(eval_split.labels) == 16
  assert train_split.labels.dtype == np.int32
  x = jnp.ones((2, 8, 8, 3))
  model = TwoLayer()
  params = model.init(jax.random.key(0), x)
  np.testing.assert_array_equal(
    build.apply_fn(model)(params, x, train=True), model.apply(params, x)
  )
  lenet = build.make_model(presets.tutorial())
  assert build.apply_fn(lenet) == lenet.apply
  nothing_own = dict(own_model=False, tx=None, data_arg=None, splits=())
  assert build.describe_parts(lenet, (32, 32, 3), **nothing_own) is None


def test_run_parts_makes_everything_the_loop_runs_on_in_one_call():
  loaded, checked = [], []

  class Loading:
    def __enter__(self):
      loaded.append("enter")

    def __exit__(self, *exc):
      loaded.append("exit")

  parts = build.run_parts(
    tiny_config(),
    model=TwoLayer(),
    data=arrays(n_eval=12),
    loading=Loading,
    after_loading=lambda: checked.append(list(loaded)),
  )
  assert checked == [["enter", "exit"]]  # called once the data is read
  assert parts.input_shape == (8, 8, 3) and parts.train.num_examples == 32
  assert parts.evals.num_examples == 16 and parts.test is None  # 12 padded to 2 batches
  assert parts.custom["model"]["class"].endswith("TwoLayer")
  assert parts.custom["optimizer"] == "config" and parts.custom["data"]["num_classes"] == 4
  # The initial state is create_train_state's, bit for bit.
  rng = jax.random.key(3)
  want = build.create_train_state(tiny_config(), TwoLayer(), rng, input_shape=(8, 8, 3))
  jax.tree.map(np.testing.assert_array_equal, parts.init_state(rng).params, want.params)
