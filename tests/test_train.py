"""Training: golden one-step metrics, end-to-end runs, resume, bad configs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import set_fields

from actlab import build, checkpoint, steps, train, writers
from experiments.configs import lenet5_cifar10


def small_config(data_dir="", **overrides):
  c = lenet5_cifar10.get_config()
  c.batch_size = 8
  c.num_epochs = 1
  c.log_every_steps = 2
  c.data.data_dir = str(data_dir)
  c.data.download = False
  c.data.input_scaling = "unit"
  return set_fields(c, **overrides)


def _params(state):
  return jax.tree.map(np.asarray, state.params)


def test_train_step_golden_metrics():
  """One Adam step on a fixed batch from a fixed init.

  If this moves, something changed numerics: the model, init, loss or
  optimizer. Check the change is intended, then update the numbers.
  """
  c = small_config()
  model = build.make_model(c)
  state = build.create_train_state(c, model, jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (8, 32, 32, 3))
  y = jnp.arange(8) % 10
  state, m = jax.jit(steps.train_step)(state, {"image": x, "label": y})
  assert int(state.step) == 1
  assert float(m["count"]) == 8
  np.testing.assert_allclose(float(m["loss"]) / 8, 2.305101, rtol=1e-4)
  _, m2 = jax.jit(steps.train_step)(state, {"image": x, "label": y})
  np.testing.assert_allclose(float(m2["loss"]) / 8, 2.167671, rtol=1e-4)


def test_train_and_evaluate_on_mock_tfds(tmp_path):
  with tfds.testing.mock_data(num_examples=48):
    state = train.train_and_evaluate(small_config(tmp_path / "data", num_epochs=2), tmp_path / "wd")
  assert int(state.step) == 2 * (48 // 8) and int(state.epoch) == 2
  records = writers.read_metrics(tmp_path / "wd")
  evals = [r for r in records if r["split"] == "eval"]
  assert [r["epoch"] for r in evals] == [1, 2]
  assert all(0 <= r["accuracy"] <= 1 and np.isfinite(r["loss"]) for r in evals)
  assert [r["step"] for r in records if r["split"] == "train_interval"] == [2, 4, 6, 8, 10, 12]
  cfg = json.loads((tmp_path / "wd" / "config.json").read_text())
  assert cfg["model"]["activation"] == "relu" and cfg["batch_size"] == 8
  assert list((tmp_path / "wd").glob("events.out.tfevents.*"))
  assert checkpoint.Checkpoints(tmp_path / "wd").latest_step() == 12


def test_train_and_evaluate_on_imported_archive(fake_cifar10, tmp_path):
  data_dir, split = fake_cifar10
  c = small_config(data_dir, activation="leaky_relu(negative_slope=0.2)", input_scaling="raw")
  state = train.train_and_evaluate(c, tmp_path / "wd")
  n_train = len(split["train"][1])
  assert int(state.step) == n_train // 8
  summary = train.final_summary(tmp_path / "wd")
  assert summary["epochs"] == 1 and 0 <= summary["final_eval_accuracy"] <= 1
  cfg = json.loads((tmp_path / "wd" / "config.json").read_text())
  assert cfg["model"]["activation"] == "leaky_relu(negative_slope=0.2)"


def test_resume_continues_bit_for_bit(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  straight = train.train_and_evaluate(small_config(data_dir, num_epochs=3), tmp_path / "a")
  train.train_and_evaluate(small_config(data_dir, num_epochs=1), tmp_path / "b")
  resumed = train.train_and_evaluate(small_config(data_dir, num_epochs=3), tmp_path / "b")
  assert int(resumed.step) == int(straight.step) and int(resumed.epoch) == 3
  jax.tree.map(np.testing.assert_array_equal, _params(resumed), _params(straight))
  evals = lambda d: [r for r in writers.read_metrics(d) if r["split"] == "eval"]  # noqa: E731
  assert [r["accuracy"] for r in evals(tmp_path / "b")] == [
    r["accuracy"] for r in evals(tmp_path / "a")
  ]


def test_epoch_order_depends_only_on_key_and_epoch():
  rng = jax.random.key_data(jax.random.key(3))
  a = steps.epoch_permutation(rng, jnp.int32(1), 100)
  b = steps.epoch_permutation(rng, jnp.int32(1), 100)
  c = steps.epoch_permutation(rng, jnp.int32(2), 100)
  np.testing.assert_array_equal(a, b)
  assert sorted(np.asarray(a).tolist()) == list(range(100)) and not np.array_equal(a, c)


@pytest.mark.parametrize(
  "override, message",
  [
    ({"batch_size": 0}, "config.batch_size must be a positive integer, got 0"),
    ({"batch_size": -8}, "config.batch_size must be a positive integer"),
    ({"num_epochs": 0}, "config.num_epochs must be a positive integer, got 0"),
    (
      {"learning_rate": -1.0},
      "config.optim.learning_rate must be a positive finite number, got -1.0",
    ),
    ({"activation": "rleu"}, "Unknown activation 'rleu'. Did you mean 'relu'?"),
    ({"activation": "elu(alpha="}, "Malformed activation spec"),
    ({"optimizer": "adagrad"}, "config.optim.name='adagrad' is not one of"),
    ({"input_scaling": "minmax"}, "config.data.input_scaling='minmax' is not one of"),
  ],
)
def test_bad_config_is_refused_before_anything_runs(tmp_path, override, message):
  with pytest.raises(ValueError) as err:
    train.train_and_evaluate(small_config(tmp_path, **override), tmp_path / "wd")
  assert message in str(err.value)
  assert not (tmp_path / "wd").exists()


def test_batch_larger_than_the_split_is_refused(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  with pytest.raises(ValueError, match="larger than the training split"):
    train.train_and_evaluate(small_config(data_dir, batch_size=4096), tmp_path / "wd")


def test_validation_protocol_tests_once_at_the_selected_epoch(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  c = small_config(
    data_dir, num_epochs=3, train_split="train[:32]", eval_split="train[32:]", test_split="test"
  )
  train.train_and_evaluate(c, tmp_path / "wd")
  records = writers.read_metrics(tmp_path / "wd")
  evals = {r["epoch"]: r["accuracy"] for r in records if r["split"] == "eval"}
  (test,) = [r for r in records if r["split"] == "test"]
  # The first epoch with the highest eval accuracy is the selected one.
  best = max(evals.values())
  assert test["selected_epoch"] == min(e for e, a in evals.items() if a == best)
  assert test["eval_accuracy"] == pytest.approx(best)
  summary = train.final_summary(tmp_path / "wd")
  assert summary["selected_epoch"] == test["selected_epoch"]
  assert summary["test_accuracy"] == test["accuracy"] and "best_eval_accuracy" not in summary
  # Rerunning the finished run trains nothing and tests nothing again.
  train.train_and_evaluate(c, tmp_path / "wd")
  assert [r["split"] for r in writers.read_metrics(tmp_path / "wd")].count("test") == 1
