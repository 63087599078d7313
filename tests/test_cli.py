"""The commands a user types: the experiment, the data import, a bare import."""

import json

from conftest import make_fake_cifar10
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
    f"--config.data_dir={data_dir}",
    "--config.download=False",
    "--config.batch_size=8",
    "--config.num_epochs=2",
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert "Total params: 697,046" in out.stdout
  assert "Epoch 2/2" in out.stdout and "val_acc:" in out.stdout and "ms/step" in out.stdout
  summary = json.loads(out.stdout[out.stdout.rindex("{") :])
  assert summary["epochs"] == 2
  cfg = json.loads((tmp_path / "wd" / "config.json").read_text())
  assert (cfg["activation"], cfg["num_epochs"], cfg["batch_size"]) == ("tanh", 2, 8)


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


def test_experiment_offline_without_data_says_what_to_do(tmp_path):
  out = run(
    "experiments/main.py",
    "--config=experiments/configs/lenet5_cifar10.py",
    f"--workdir={tmp_path / 'wd'}",
    f"--config.data_dir={tmp_path / 'nothing'}",
    "--config.download=False",
  )
  assert out.returncode != 0
  assert "python -m actlab.data import" in out.stderr
