"""The commands a user types: the experiment, the data import, a bare import."""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from conftest import ROOT, experiment_args, make_fake_cifar10, python_env
from conftest import run_python as run


def test_import_actlab_does_not_import_tensorflow():
  code = (
    "import sys, actlab\n"
    "for name in actlab.__all__: getattr(actlab, name)  # every submodule\n"
    "assert 'tensorflow' not in sys.modules, sorted(m for m in sys.modules if 'tensorflow' in m)\n"
    "print('ok')"
  )
  out = run("-c", code)
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "ok"


def test_data_import_command_then_experiment_with_flag_overrides(tmp_path, fake_cifar10):
  data_dir, _ = fake_cifar10
  out = run(
    "experiments/main.py",
    "--config=experiments/configs/lenet5_cifar10.py:act=tanh",
    f"--workdir={tmp_path / 'wd'}",
    f"--config.data.data_dir={data_dir}",
    "--config.data.download=False",
    "--config.batch_size=8",
    "--config.num_epochs=2",
    "--cpu_devices=2",
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert "JAX devices: 2 cpu" in out.stdout
  assert "Total params: 697,046" in out.stdout
  assert "Epoch 2/2" in out.stdout and "val_acc:" in out.stdout and "ms/step" in out.stdout
  summary = json.loads(out.stdout[out.stdout.rindex("{") :])
  assert summary["epochs"] == 2
  cfg = json.loads((tmp_path / "wd" / "config.json").read_text())
  assert (cfg["model"]["activation"], cfg["num_epochs"], cfg["batch_size"]) == ("tanh", 2, 8)


def test_data_import_command_rejects_corrupt_member(tmp_path):
  path, _, _ = make_fake_cifar10(tmp_path, per_batch=2)
  out = run("-m", "actlab.data", "import", str(path), f"--data_dir={tmp_path / 'tfds'}")
  assert out.returncode == 1
  assert "does not match the official CIFAR-10 release" in out.stderr
  assert not (tmp_path / "tfds").exists()


def test_experiment_refuses_bad_override(tmp_path):
  out = run(
    "experiments/main.py",
    "--config=experiments/configs/lenet5_cifar10.py",
    f"--workdir={tmp_path / 'wd'}",
    "--config.batch_size=-1",
  )
  assert out.returncode != 0
  assert "config.batch_size must be a positive integer, got -1" in out.stderr
  out = run(
    "experiments/main.py",
    "--config=experiments/configs/lenet5_cifar10.py",
    f"--workdir={tmp_path / 'wd'}",
    "--cpu_devices=two",
  )
  assert out.returncode == 1
  assert "--cpu_devices='two': give 'auto' or a positive number" in out.stderr
  assert not (tmp_path / "wd").exists()


def test_experiment_offline_without_data_says_what_to_do(tmp_path):
  out = run(
    "experiments/main.py",
    "--config=experiments/configs/lenet5_cifar10.py",
    f"--workdir={tmp_path / 'wd'}",
    f"--config.data.data_dir={tmp_path / 'nothing'}",
    "--config.data.download=False",
  )
  assert out.returncode != 0
  assert "python -m actlab.data import" in out.stderr


def _one_error_line(out, *expected):
  lines = [x for x in out.stderr.splitlines() if x.startswith("error:")]
  assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
  assert len(lines) == 1, out.stderr[-3000:]
  for text in expected:
    assert text in out.stderr, out.stderr[-3000:]


def test_expected_failures_are_one_error_line_without_traceback(tmp_path, fake_cifar10):
  data_dir, _ = fake_cifar10
  (tmp_path / "file").write_text("")
  cases = {
    "unknown field": (
      experiment_args(data_dir, tmp_path / "a", foo=1),
      ["no field 'foo'", "--config.foo"],
    ),
    "workdir is a file": (
      experiment_args(data_dir, tmp_path / "file"),
      ["exists and is not a directory"],
    ),
    "workdir under /proc": (
      experiment_args(data_dir, "/proc/actlab-wd"),
      ["Cannot create the workdir /proc/actlab-wd"],
    ),
    "empty workdir": (experiment_args(data_dir, ""), ["workdir is empty"]),
    "field of the flat config": (
      [*experiment_args(data_dir, tmp_path / "c"), "--config.learning_rate=0.1"],
      ["no field 'learning_rate'; did you mean --config.optim.learning_rate?"],
    ),
    "group as a field": (
      [*experiment_args(data_dir, tmp_path / "d"), "--config.diagnostics=True"],
      ["group of fields, not a field; did you mean --config.diagnostics.enabled?"],
    ),
    "bad split": (
      experiment_args(data_dir, tmp_path / "b", train_split="bogus"),
      ["Cannot read the split 'bogus'"],
    ),
  }
  # Each case starts its own interpreter; run them side by side.
  with ThreadPoolExecutor(len(cases)) as pool:
    outs = dict(zip(cases, pool.map(lambda c: run(*c[0]), cases.values())))
  for name, out in outs.items():
    _one_error_line(out, *cases[name][1])
  assert not (tmp_path / "a").exists()


def test_a_bad_config_file_or_dataset_info_is_one_error_line(tmp_path, fake_cifar10):
  """A config file that cannot load, a `:arg` of the wrong type, and a
  truncated dataset_info.json: one `error:` line that says what to fix."""
  import shutil

  data_dir, _ = fake_cifar10
  damaged = tmp_path / "tfds"
  shutil.copytree(data_dir, damaged)
  (info,) = damaged.rglob("dataset_info.json")
  info.write_text(info.read_text()[:100])
  config = "experiments/configs/lenet5_cifar10.py"
  cases = {
    "missing config file": (
      ["experiments/main.py", "--config=nope.py", f"--workdir={tmp_path / 'a'}"],
      ["--config=nope.py", "No such file or directory"],
    ),
    "bad config argument": (
      ["experiments/main.py", f"--config={config}:epochs=zero", f"--workdir={tmp_path / 'b'}"],
      [f"--config={config}:epochs=zero", "num_epochs", "zero"],
    ),
    "truncated dataset_info.json": (
      experiment_args(damaged, tmp_path / "c"),
      [f"CIFAR-10 in {damaged} cannot be read", "Delete", "actlab.data import"],
    ),
  }
  with ThreadPoolExecutor(len(cases)) as pool:
    outs = dict(zip(cases, pool.map(lambda c: run(*c[0]), cases.values())))
  for name, out in outs.items():
    _one_error_line(out, *cases[name][1])
    (line,) = [x for x in out.stderr.splitlines() if x.startswith("error:")]
    for text in cases[name][1]:  # all of it on the one line
      assert text in line, (name, out.stderr[-3000:])
  assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_tilde_workdir_is_expanded_for_the_run_and_its_summary(tmp_path, fake_cifar10):
  data_dir, _ = fake_cifar10
  args = experiment_args(data_dir, "~/runs/wd", batch_size=8, num_epochs=1)
  out = subprocess.run(
    [sys.executable, *args],
    cwd=ROOT,
    env=python_env(HOME=str(tmp_path)),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert json.loads(out.stdout[out.stdout.rindex("{") :])["epochs"] == 1
  assert (tmp_path / "runs" / "wd" / "metrics.jsonl").exists()
