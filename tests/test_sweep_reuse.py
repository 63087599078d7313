"""`actlab-sweep --reuse`: a sweep's cell that another sweep already trained is copied,
and the copy is the run the sweep would have trained."""

import json

import numpy as np
import pytest
from conftest import ROOT
from test_sweep import small_overrides

from actlab import sweep, workdir
from actlab.cli import sweep as sweep_cli

COMPARISON = str(ROOT / "experiments/configs/proxy_comparison.py")
LEARNING_RATES = str(ROOT / "experiments/configs/learning_rates.py")


def _trained(sweep_dir, condition, seed=0):
  """What a run recorded, less its wall-clock timings."""
  timing = ("seconds", "ms_per_step", "checkpoint_seconds", "images_per_second")
  lines = (sweep_dir / condition / f"seed_{seed}" / "metrics.jsonl").read_text().splitlines()
  return [{k: v for k, v in json.loads(x).items() if k not in timing} for x in lines]


def _train_all(sweep_dir):
  p = sweep.Plan.load(sweep_dir)
  for i, run in enumerate(p.runs()):
    if sweep.status(sweep_dir, run) != "done":
      assert sweep.run_one(sweep_dir, i) == 0


@pytest.fixture
def source_sweep(fake_cifar10, tmp_path, monkeypatch):
  """relu and tanh at seed 0 on the fake CIFAR-10, trained under a fixed code version."""
  code = {**workdir.code_version(), "git_commit": "a" * 40, "git_dirty": False}
  monkeypatch.setattr(workdir, "code_version", lambda: code)
  source = tmp_path / "comparison"
  overrides = small_overrides(fake_cifar10[0], num_epochs=1)
  sweep.plan(COMPARISON + ":acts=relu+tanh", overrides, [0]).save(source)
  _train_all(source)
  started = workdir.read_provenance(source / "relu" / "seed_0")
  assert len(started) == 1 and started[0]["git_commit"] == "a" * 40
  assert started[0]["platform"] == "cpu" and started[0]["cpus"] >= 1  # how XLA ran
  return source, overrides, code


def test_the_shared_cell_is_copied_and_equals_training_it(source_sweep, tmp_path, monkeypatch):
  source, overrides, code = source_sweep
  target = tmp_path / "learning_rates"
  sweep.plan(LEARNING_RATES + ":acts=relu", overrides, [0]).save(target)
  outcome = sweep.reuse_finished(target, [source], single_threaded=False)
  assert [x.split(" <- ")[0] for x in outcome["reused"]] == ["relu_lr0.001/seed_0"]
  assert outcome["no match"] == ["relu_lr0.0003/seed_0", "relu_lr0.003/seed_0"]
  copied = target / "relu_lr0.001" / "seed_0"
  done = json.loads((copied / sweep.DONE_FILE).read_text())
  assert done["run"] == "relu_lr0.001/seed_0"
  assert done["reused_from"] == "comparison/relu/seed_0"
  assert not workdir.has_checkpoint(copied)  # nothing to resume: the run is finished
  plan = sweep.Plan.load(target)
  assert workdir.resolved_config(sweep.run_config(plan, plan.runs()[1])) == json.loads(
    (copied / "config.json").read_text()
  )

  # Training that cell afresh gives the same records (up to the order of float sums).
  fresh = tmp_path / "fresh"
  sweep.plan(LEARNING_RATES + ":acts=relu", overrides, [0], only=["relu_lr0.001"]).save(fresh)
  _train_all(fresh)
  want, got = _trained(fresh, "relu_lr0.001"), _trained(target, "relu_lr0.001")
  assert [(r["split"], r["step"]) for r in want] == [(r["split"], r["step"]) for r in got]
  np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in want], rtol=1e-4)

  # Run twice: nothing more to copy, nothing overwritten.
  again = sweep.reuse_finished(target, [source])
  assert again["reused"] == [] and "relu_lr0.001/seed_0" in again["kept"]


def test_runs_of_other_code_or_threading_are_not_copied(source_sweep, tmp_path, monkeypatch):
  source, overrides, code = source_sweep
  target = tmp_path / "learning_rates"
  sweep.plan(LEARNING_RATES + ":acts=relu", overrides, [0]).save(target)

  monkeypatch.setattr(workdir, "code_version", lambda: {**code, "git_commit": "b" * 40})
  outcome = sweep.reuse_finished(target, [source])
  assert outcome["reused"] == []
  assert len(outcome["other code"]) == 1 and "git_commit='aaaa" in outcome["other code"][0]

  # The source ran in this process, XLA multi-threaded: pinned workers would sum differently.
  monkeypatch.setattr(workdir, "code_version", lambda: code)
  outcome = sweep.reuse_finished(target, [source], single_threaded=True)
  assert (
    outcome["reused"] == [] and "this sweep runs XLA single-threaded" in outcome["other code"][0]
  )
  assert not (target / "relu_lr0.001").exists()


def test_the_sweep_command_reuses_and_says_why_it_cannot(
  source_sweep, tmp_path, monkeypatch, capsys
):
  source, overrides, code = source_sweep
  target = tmp_path / "learning_rates"
  command = [
    f"--config={LEARNING_RATES}:acts=relu",
    "--seeds=0,",
    f"--workdir={target}",
    "--launcher=slurm",  # writes the array script, trains nothing
    *(f"--config.{k}={v}" for k, v in overrides.items()),
  ]
  monkeypatch.setattr(workdir, "code_version", lambda: {**code, "git_dirty": True})
  assert sweep_cli.main([*command, f"--reuse={source}"]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: --reuse needs") and "clean git checkout" in err
  assert err.count("\n") == 1

  monkeypatch.setattr(workdir, "code_version", lambda: code)
  assert sweep_cli.main([*command, f"--reuse={tmp_path}"]) == 1
  assert f"--reuse={tmp_path}: no sweep.json there" in capsys.readouterr().err

  assert sweep_cli.main([*command, f"--reuse={source}"]) == 0
  assert f"reused 1 finished runs of {source}" in capsys.readouterr().out
  assert (target / "relu_lr0.001" / "seed_0" / sweep.DONE_FILE).exists()
