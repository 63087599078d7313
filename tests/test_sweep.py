"""Sweeps: the plan, the local executor (parallel, resumable), the SLURM array."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, field_path, python_env

from actlab import sweep, train, writers

COMPARISON = str(ROOT / "experiments/configs/activation_comparison.py")


def small_overrides(data_dir, **extra):
  """The validation protocol on the 40-image fake CIFAR-10 (dotted field paths)."""
  return {
    "data.data_dir": str(data_dir),
    "data.download": False,
    "data.input_scaling": "unit",
    "batch_size": 8,
    "num_epochs": 2,
    "log_every_steps": 2,
    "data.train_split": "train[:32]",
    "data.eval_split": "train[32:]",
    "data.test_split": "test",
    **{field_path(k): v for k, v in extra.items()},
  }


def test_parse_seeds():
  assert sweep.parse_seeds("3") == [0, 1, 2]
  assert sweep.parse_seeds("0,3,7") == [0, 3, 7]
  assert sweep.parse_seeds("10-12") == [10, 11, 12]
  for bad in ("0", "x", "3-a"):
    with pytest.raises(sweep.SweepError, match="--seeds"):
      sweep.parse_seeds(bad)


def test_plan_crosses_conditions_with_seeds():
  p = sweep.plan(COMPARISON + ":acts=relu+tanh+elu(alpha=0.5)", {"num_epochs": 1}, [0, 1])
  assert [r.name for r in p.runs()] == [
    "relu/seed_0", "tanh/seed_0", "elu/seed_0", "relu/seed_1", "tanh/seed_1", "elu/seed_1",
  ]
  assert p.baseline == "relu"
  run = p.runs()[5]
  config = sweep.run_config(p, run)
  assert (config.model.activation, config.seed, config.num_epochs) == ("elu(alpha=0.5)", 1, 1)
  assert config.data.test_split == "test" and config.data.eval_split == "train[45000:]"
  only = sweep.plan(COMPARISON, seeds=[0], only=["tanh"])
  assert [r.name for r in only.runs()] == ["tanh/seed_0"]
  with pytest.raises(sweep.SweepError, match="no condition named"):
    sweep.plan(COMPARISON, only=["tahn"])
  unknown = "Unknown config field 'num_epoch'. Did you mean 'num_epochs'"
  with pytest.raises(sweep.SweepError, match=unknown):
    sweep.run_config(sweep.plan(COMPARISON, {"num_epoch": 1}), run)


def test_plan_refuses_another_sweep_in_the_same_folder(tmp_path):
  sweep.plan(COMPARISON + ":acts=relu+tanh", seeds=[0]).save(tmp_path)
  sweep.plan(COMPARISON + ":acts=relu+tanh", seeds=[0, 1, 2]).save(tmp_path)  # more seeds: fine
  with pytest.raises(sweep.SweepError, match="another config"):
    sweep.plan(COMPARISON + ":acts=relu+elu", seeds=[0]).save(tmp_path)


def sweep_command(sweep_dir, data_dir, workers, seeds="2", **extra):
  """`scripts/sweep.py` of relu and tanh on `small_overrides`, as a command line."""
  fields = small_overrides(data_dir, **extra)
  return [
    sys.executable,
    "scripts/sweep.py",
    f"--config={COMPARISON}:acts=relu+tanh",
    f"--seeds={seeds}",
    f"--workers={workers}",
    f"--workdir={sweep_dir}",
    *(f"--config.{k}={v}" for k, v in fields.items()),
  ]


def _eval_epochs(run_dir):
  return sorted(r["epoch"] for r in writers.read_metrics(run_dir) if r["split"] == "eval")


def test_local_sweep_runs_in_parallel_pairs_seeds_and_skips_finished(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  out = subprocess.run(
    sweep_command(tmp_path / "s", data_dir, workers=2),
    cwd=ROOT, env=python_env(), capture_output=True, text=True, timeout=600,
  )
  assert out.returncode == 0, out.stdout + out.stderr
  assert "2 worker(s)" in out.stdout and "done: 4" in out.stdout
  for name in ("relu/seed_0", "tanh/seed_0", "relu/seed_1", "tanh/seed_1"):
    d = tmp_path / "s" / name
    done = json.loads((d / "done.json").read_text())
    assert done["selected_epoch"] in (1, 2) and 0 <= done["test_accuracy"] <= 1
    assert _eval_epochs(d) == [1, 2]
    assert [r["split"] for r in writers.read_metrics(d)].count("test") == 1
  # Paired design: one seed gives every condition the same data-order key.
  rng = {
    name: np.asarray(train.restore_run(tmp_path / "s" / name)[1].rng)
    for name in ("relu/seed_0", "tanh/seed_0", "relu/seed_1")
  }
  np.testing.assert_array_equal(rng["relu/seed_0"], rng["tanh/seed_0"])
  assert not np.array_equal(rng["relu/seed_0"], rng["relu/seed_1"])
  before = (tmp_path / "s/relu/seed_0/metrics.jsonl").read_bytes()
  again = subprocess.run(
    sweep_command(tmp_path / "s", data_dir, workers=2),
    cwd=ROOT, env=python_env(), capture_output=True, text=True, timeout=300,
  )
  assert again.returncode == 0 and "4 finished before, 0 to run" in again.stdout, again.stdout
  assert (tmp_path / "s/relu/seed_0/metrics.jsonl").read_bytes() == before


def test_killed_sweep_resumes_without_losing_or_repeating_runs(fake_cifar10_large, tmp_path):
  data_dir, _ = fake_cifar10_large
  cmd = sweep_command(
    tmp_path / "s", data_dir, workers=1, seeds="1",
    train_split="train[:256]", eval_split="train[256:]", checkpoint_every_steps=2,
  )
  proc = subprocess.Popen(
    cmd, cwd=ROOT, env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
  )
  first = tmp_path / "s/relu/seed_0"
  deadline = time.time() + 300
  while not list((first / "checkpoints").glob("[0-9]*")) and time.time() < deadline:
    time.sleep(0.2)
  os.kill(proc.pid, signal.SIGKILL)  # the sweep itself dies; its worker must not be orphaned
  proc.wait()
  deadline = time.time() + 120
  while not _lock_free(first / ".lock") and time.time() < deadline:
    time.sleep(0.2)  # the worker saves on SIGTERM and exits
  assert not (first / "done.json").exists()
  out = subprocess.run(cmd, cwd=ROOT, env=python_env(), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stdout + out.stderr
  assert "done: 2" in out.stdout
  for name in ("relu/seed_0", "tanh/seed_0"):
    d = tmp_path / "s" / name
    assert (d / "done.json").exists()
    assert sorted(set(_eval_epochs(d))) == [1, 2]
    state = train.restore_run(d)[1]
    assert int(state.step) == 2 * (256 // 8)
  assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["relu", "sweep.json", "tanh"]


def _lock_free(path) -> bool:
  fd = os.open(path, os.O_RDWR)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return True
  except BlockingIOError:
    return False
  finally:
    os.close(fd)


def test_slurm_array_script_quotes_every_path_and_runs_one_task_per_run(fake_cifar10, tmp_path):
  """A sweep folder with a space, quotes, command substitutions and a
  non-ASCII name: the task trains its run there and runs nothing else."""
  data_dir, _ = fake_cifar10
  marker = tmp_path / "executed"
  sweep_dir = tmp_path / f"s p'q\"$(touch {marker})`touch {marker}`;ü"
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for tool in ("sbatch", "scontrol"):  # each records its arguments, one per line
    record = f'printf "{tool}\\n" >> "$0.log"; printf "%s\\n" "$@" >> "$0.log"'
    (bin_dir / tool).write_text(f"#!/bin/bash\n{record}\n")
    (bin_dir / tool).chmod(0o755)
  env = python_env(PATH=f"{bin_dir}:{os.environ['PATH']}")
  cmd = sweep_command(sweep_dir, data_dir, workers=1, seeds="1", num_epochs=1)
  cmd += ["--launcher=slurm", "--submit"]
  out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  script = sweep_dir / "slurm/sweep.sbatch"
  text = script.read_text()
  assert "#SBATCH --array=0-1" in text and "scontrol requeue" in text
  assert all(line.count("'") % 2 == 0 for line in text.splitlines() if str(sweep_dir) in line)
  assert (bin_dir / "sbatch.log").read_text().splitlines() == [
    "sbatch", f"--output={sweep_dir}/slurm/%A_%a.out", str(script)
  ]  # fmt: skip
  assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
  # Task 1 of the array, run as SLURM would run it.
  env = dict(env, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_JOB_ID="7")
  task = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
  assert task.returncode == 0, task.stdout + task.stderr
  assert (sweep_dir / "tanh/seed_0/done.json").exists()
  assert sorted(p.name for p in sweep_dir.iterdir()) == sorted([sweep.PLAN_FILE, "slurm", "tanh"])
  assert not marker.exists() and not (bin_dir / "scontrol.log").exists()


def test_a_slurm_script_refuses_a_line_break_in_a_path(tmp_path):
  sweep_dir = tmp_path / "two\nlines"
  sweep.plan(COMPARISON, small_overrides(tmp_path), [0], ["relu"]).save(sweep_dir)
  with pytest.raises(sweep.SweepError, match="line break"):
    sweep.write_slurm(sweep_dir)


def test_sbatch_is_not_on_path(tmp_path, monkeypatch):
  sweep.plan(COMPARISON, small_overrides(tmp_path), [0], ["relu"]).save(tmp_path / "s")
  script = sweep.write_slurm(tmp_path / "s")
  monkeypatch.setenv("PATH", str(tmp_path / "no_slurm_here"))
  with pytest.raises(sweep.SweepError, match="sbatch is not on PATH"):
    sweep.submit_slurm(script)


def test_a_sweep_planned_with_flat_fields_loads_with_dotted_ones(tmp_path):
  flat = {
    "config": COMPARISON,
    "conditions": [{"name": "tanh", "fields": {"activation": "tanh", "learning_rate": 0.01}}],
    "seeds": [0],
    "overrides": {"data_dir": "/d", "num_epochs": 1},
    "baseline": None,
  }
  (tmp_path / sweep.PLAN_FILE).write_text(json.dumps(flat))
  p = sweep.Plan.load(tmp_path)
  assert p.conditions[0]["fields"] == {"model.activation": "tanh", "optim.learning_rate": 0.01}
  assert p.overrides == {"data.data_dir": "/d", "num_epochs": 1}
  config = sweep.run_config(p, p.runs()[0])
  assert (config.model.activation, config.optim.learning_rate) == ("tanh", 0.01)


@pytest.mark.parametrize(
  "text, says",
  [
    ("{}", "lacks 'config', 'conditions', 'seeds'"),
    ("[]", "holds a JSON list"),
    ('{"config": "c.py", "conditions": 5, "seeds": [0]}', "'conditions' must be a list"),
    ('{"config": "c.py", "conditions": [], "seeds": "0"}', "'seeds' must be a list"),
    ('{"config": "c.py", "conditions": [], "seeds": [0], "extra": 1}', "unknown entries"),
    ("garbage{", "Cannot read the sweep plan"),
  ],
)
def test_a_sweep_json_that_is_not_a_plan_is_one_error_line_naming_it(tmp_path, capsys, text, says):
  (tmp_path / sweep.PLAN_FILE).write_text(text)
  assert sweep.main(["run", str(tmp_path), "--index", "0"]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1, err
  assert str(tmp_path / sweep.PLAN_FILE) in err and says in err, err
