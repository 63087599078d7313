"""Many seeds in one program (`config.seeds_per_program`): each seed's run
folder holds what its separate run holds, to float32 rounding; resumable."""

import json
import os
import shutil
import signal

import jax
import numpy as np
import pytest
from conftest import ROOT, set_fields

from actlab import config as config_lib
from actlab import multiseed, steps, sweep, train, writers
from actlab.faults import Preempted
from actlab.workdir import WorkdirError

SEEDS = (0, 1)
# What depends on the clock, not on the computation.
TIMING = ("seconds", "ms_per_step", "checkpoint_seconds")
# Float32 sums of per-example losses: a batched program may order and fuse
# the same arithmetic differently (measured here: relative differences below
# 1e-6; counts and accuracies agree exactly).
RTOL = 1e-5
# Adam divides each gradient by its running RMS, so where a gradient is near
# zero a rounding difference moves the update by a fraction of the learning
# rate (measured: at most 1.5e-5 after 8 steps at 1e-3).
PARAMS_ATOL = 1e-4


# The validation protocol on the 40-image fake CIFAR-10: 4 steps an epoch, 2 epochs.
SMALL = dict(
  batch_size=8,
  num_epochs=2,
  log_every_steps=2,
  train_split="train[:32]",
  eval_split="train[32:]",
  test_split="test",
)


def small_config(data_dir, **fields):
  """`SMALL` on the fake CIFAR-10 in `data_dir`."""
  c = config_lib.base_config()
  return set_fields(
    c, data_dir=str(data_dir), download=False, input_scaling="unit", **{**SMALL, **fields}
  )


def _records(run_dir):
  return [{k: v for k, v in r.items() if k not in TIMING} for r in writers.read_metrics(run_dir)]


def assert_same_records(got_dir, want_dir, rtol=RTOL):
  got, want = _records(got_dir), _records(want_dir)
  assert [(r["split"], r["step"], r["epoch"]) for r in got] == [
    (r["split"], r["step"], r["epoch"]) for r in want
  ]
  for g, w in zip(got, want):
    assert g.keys() == w.keys(), (g, w)
    for k in g:
      if k == "loss":
        np.testing.assert_allclose(g[k], w[k], rtol=rtol, err_msg=str((g, w)))
      else:
        assert g[k] == w[k], (k, g, w)


@pytest.fixture(scope="module")
def separate_runs(fake_cifar10, tmp_path_factory):
  """Seeds 0 and 1 as two ordinary runs: {seed: run folder}."""
  data_dir, _ = fake_cifar10
  root = tmp_path_factory.mktemp("separate")
  for s in SEEDS:
    train.train_and_evaluate(small_config(data_dir, seed=s), root / f"seed_{s}")
  return {s: root / f"seed_{s}" for s in SEEDS}


@pytest.fixture(scope="module", params=["vmap", "unroll"])
def group_run(fake_cifar10, tmp_path_factory, request):
  """The same seeds in one program, batched or unrolled: (workdir, each seed's
  final state)."""
  data_dir, _ = fake_cifar10
  root = tmp_path_factory.mktemp(f"group_{request.param}")
  config = small_config(data_dir, seeds_per_program=len(SEEDS), seed_batching=request.param)
  states = multiseed.train_and_evaluate(config, root)
  return root, states


def test_each_seed_matches_its_separate_run(group_run, separate_runs):
  root, states = group_run
  # What experiments/main.py prints at the end: each seed's summary.
  summary = multiseed.final_summary(small_config("", seeds_per_program=len(SEEDS)), root)
  assert summary == {f"seed_{s}": train.final_summary(root / f"seed_{s}") for s in SEEDS}
  assert summary["seed_0"]["selected_epoch"] in (1, 2)
  assert sorted(p.name for p in root.iterdir()) == [f"seed_{s}" for s in SEEDS]
  for s, state in zip(SEEDS, states):
    d = root / f"seed_{s}"
    saved = json.loads((d / "config.json").read_text())
    assert (saved["seed"], saved["seeds_per_program"]) == (s, len(SEEDS))
    assert [r["split"] for r in writers.read_metrics(d)].count("test") == 1
    assert_same_records(d, separate_runs[s])
    # The checkpoint is an ordinary run's: restore_run reads it alone.
    _, restored = train.restore_run(d)
    _, alone = train.restore_run(separate_runs[s])
    assert int(restored.step) == int(alone.step) == int(state.step) == 8
    np.testing.assert_array_equal(np.asarray(restored.rng), np.asarray(alone.rng))
    jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=PARAMS_ATOL),
      restored.params,
      alone.params,
    )
  # The seeds differ from each other: their own initialisation and data order.
  assert _records(root / "seed_0") != _records(root / "seed_1")


def test_each_seed_sees_exactly_its_separate_data_order():
  keys = np.stack(
    [np.asarray(jax.random.key_data(jax.random.split(jax.random.key(s))[1])) for s in SEEDS]
  )
  epochs = np.full(len(SEEDS), 3, np.int32)
  stacked = jax.jit(jax.vmap(steps.epoch_permutation, in_axes=(0, 0, None)), static_argnums=2)
  together = np.asarray(stacked(keys, epochs, 40))
  for k in range(len(SEEDS)):
    alone = np.asarray(steps.epoch_permutation(keys[k], np.int32(3), 40))
    np.testing.assert_array_equal(together[k], alone)
  assert len({tuple(t) for t in together}) == len(SEEDS)


def test_an_interrupted_group_resumes_to_the_same_records(
  fake_cifar10, group_run, tmp_path, monkeypatch
):
  """A SIGTERM after step 3 (mid-epoch) saves every seed; the rerun continues
  them to exactly the records and states of the uninterrupted group."""
  data_dir, _ = fake_cifar10
  root, straight = group_run
  how = json.loads((root / "seed_0" / "config.json").read_text())["seed_batching"]
  config = small_config(data_dir, seeds_per_program=len(SEEDS), seed_batching=how)
  flush = multiseed._Group._flush_logs

  def stop_after_step_3(self):
    if self.step == 3:
      os.kill(os.getpid(), signal.SIGTERM)
    flush(self)

  with monkeypatch.context() as m:
    m.setattr(multiseed._Group, "_flush_logs", stop_after_step_3)
    with pytest.raises(Preempted, match="after step 3"):
      multiseed.train_and_evaluate(config, tmp_path)
  for s in SEEDS:
    assert any(r["split"] == "preempted" for r in writers.read_metrics(tmp_path / f"seed_{s}"))
  states = multiseed.train_and_evaluate(config, tmp_path)
  # As in a single run, the logging interval the stop cut (steps 3-4) is
  # logged over the steps after the resume; the epoch's sums hold all of them.
  cut = lambda r: r["split"] == "train_interval" and r["step"] == 4  # noqa: E731
  for s, state, want in zip(SEEDS, states, straight):
    got = [r for r in _records(tmp_path / f"seed_{s}") if r["split"] != "preempted"]
    assert [r for r in got if not cut(r)] == [r for r in _records(root / f"seed_{s}") if not cut(r)]
    assert sum(map(cut, got)) == 1
    jax.tree.map(np.testing.assert_array_equal, state.params, want.params)


def test_seeds_at_different_steps_are_refused(fake_cifar10, separate_runs, tmp_path):
  data_dir, _ = fake_cifar10
  shutil.copytree(separate_runs[1], tmp_path / "seed_1")  # seed 1 finished alone; seed 0 new
  with pytest.raises(WorkdirError, match="seed_0: step 0, seed_1: step 8.*seeds_per_program=1"):
    multiseed.train_and_evaluate(small_config(data_dir, seeds_per_program=2), tmp_path)


@pytest.mark.parametrize(
  "fields,message",
  [
    ({"seeds_per_program": 0}, "seeds_per_program must be a positive integer"),
    ({"seeds_per_program": 2, "seed_batching": "pmap"}, "is not one of auto, vmap, unroll"),
    (
      {"seeds_per_program": 2, "diagnostics.enabled": True},
      "cannot be combined with config.diagnostics.enabled",
    ),
    (
      {"seeds_per_program": 2, "early_stopping_patience": 1},
      "cannot be combined with config.early_stopping_patience=1",
    ),
  ],
)
def test_invalid_or_uncombinable_settings_are_refused(tmp_path, fields, message):
  c = small_config(tmp_path / "no_data", **fields)
  with pytest.raises(config_lib.ConfigError, match=message):
    multiseed.train_and_evaluate(c, tmp_path / "wd")
  assert not (tmp_path / "wd").exists()


def test_auto_batching_loops_on_cpu_and_vmaps_elsewhere():
  class Mesh:
    def __init__(self, platform):
      self.devices = np.array([type("Device", (), {"platform": platform})()])

  auto = small_config("")
  assert multiseed.seed_batching(auto, Mesh("cpu")) == "unroll"
  assert multiseed.seed_batching(auto, Mesh("gpu")) == "vmap"
  assert multiseed.seed_batching(auto, Mesh("tpu")) == "vmap"
  chosen = small_config("", seed_batching="vmap")
  assert multiseed.seed_batching(chosen, Mesh("cpu")) == "vmap"


def test_train_and_evaluate_points_to_multiseed(tmp_path):
  c = small_config(tmp_path / "no_data", seeds_per_program=2)
  with pytest.raises(config_lib.ConfigError, match="call actlab.multiseed.train_and_evaluate"):
    train.train_and_evaluate(c, tmp_path / "wd")
  assert not (tmp_path / "wd").exists()


def test_custom_parts_and_multiple_processes_are_refused(tmp_path, monkeypatch):
  c = small_config(tmp_path / "no_data", seeds_per_program=2)
  with pytest.raises(config_lib.ConfigError, match="model cannot be passed"):
    multiseed.train_and_evaluate(c, tmp_path / "wd", model=object())
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  with pytest.raises(config_lib.ConfigError, match="runs in one process.*2 processes"):
    multiseed.train_and_evaluate(c, tmp_path / "wd")


def test_a_sweep_groups_the_seeds_of_each_condition(fake_cifar10, tmp_path, separate_runs):
  data_dir, _ = fake_cifar10
  overrides = {
    field: value
    for field, value in config_lib.flatten(small_config(data_dir).to_dict()).items()
    if field.startswith("data.") or field in ("batch_size", "num_epochs", "log_every_steps")
  }
  comparison = str(ROOT / "experiments/configs/activation_comparison.py") + ":acts=relu+tanh"
  p = sweep.plan(comparison, {**overrides, "seeds_per_program": 2}, seeds=[0, 1, 2])
  p.save(tmp_path)
  names = [r.name for r in p.runs()]
  assert [[names[i] for i in task] for task in p.tasks()] == [
    ["relu/seed_0", "relu/seed_1"],
    ["tanh/seed_0", "tanh/seed_1"],
    ["relu/seed_2"],
    ["tanh/seed_2"],
  ]
  script = sweep.write_slurm(tmp_path)
  assert "#SBATCH --array=0-3\n" in script.read_text()
  assert sweep.run_one(tmp_path, 0) == 0
  for s in SEEDS:
    d = tmp_path / "relu" / f"seed_{s}"
    assert json.loads((d / sweep.DONE_FILE).read_text())["run"] == f"relu/seed_{s}"
    assert_same_records(d, separate_runs[s])
  assert not (tmp_path / "tanh").exists()
  # The last seed, alone in its task: trained in its own folder, not as a group of its own.
  assert sweep.run_one(tmp_path, 2) == 0
  assert (tmp_path / "relu/seed_2" / sweep.DONE_FILE).exists()
  assert not (tmp_path / "relu/seed_2/seed_2").exists()
  assert sweep.run_one(tmp_path, 0) == 0  # finished: skipped
  with pytest.raises(sweep.SweepError, match="seeds_per_program must be a positive integer"):
    sweep.plan(comparison, {**overrides, "seeds_per_program": 0}, seeds=[0]).tasks()
