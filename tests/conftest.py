"""Test setup: strict JAX numerics and small, self-made CIFAR-10 copies."""

import atexit
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import jax
import numpy as np
import pytest

from actlab.config import FLAT_FIELDS
from actlab.sweep import set_field

# Implicit rank promotion hides shape bugs; make it an error in tests.
jax.config.update("jax_numpy_rank_promotion", "raise")
# Eight CPU devices, set before JAX starts its backend, so every training test
# runs the sharded (data-parallel) path that GPUs and TPUs run.
NUM_TEST_DEVICES = 8
jax.config.update("jax_num_cpu_devices", NUM_TEST_DEVICES)
# One persistent compilation cache for the session, shared with the
# subprocesses the tests start: the many runs of the same small models compile
# each program once. A cached executable is the program XLA would compile
# again, so results are unchanged; only compile time is saved.
COMPILATION_CACHE = tempfile.mkdtemp(prefix="actlab-test-xla-cache-")
atexit.register(shutil.rmtree, COMPILATION_CACHE, ignore_errors=True)
for _flag, _value in (
  ("jax_compilation_cache_dir", COMPILATION_CACHE),
  ("jax_persistent_cache_min_compile_time_secs", 0),
  ("jax_persistent_cache_min_entry_size_bytes", 0),
):
  jax.config.update(_flag, _value)
  os.environ[_flag.upper()] = str(_value)

ROOT = Path(__file__).resolve().parents[1]

LABEL_NAMES = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
]
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]


def cifar_records(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """`n` random images (N, 32, 32, 3) uint8 and labels, deterministic in seed."""
  rng = np.random.default_rng(seed)
  return (
    rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
    rng.integers(0, 10, (n,), dtype=np.uint8),
  )


def to_binary(images: np.ndarray, labels: np.ndarray) -> bytes:
  """The official record layout: label byte, then R, G, B planes row-major."""
  planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
  return np.concatenate([labels[:, None], planes], axis=1).astype(np.uint8).tobytes()


def python_env(**extra: str) -> dict[str, str]:
  """Environment for a subprocess that imports actlab and experiments."""
  return dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **extra)


def run_python(*args, timeout=300) -> subprocess.CompletedProcess:
  """Runs `python *args` in the repository root and waits for it."""
  return subprocess.run(
    [sys.executable, *args],
    cwd=ROOT,
    env=python_env(),
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def field_path(name: str) -> str:
  """A config field's dotted path: `"activation"` -> `"model.activation"`.

  Tests name fields by their own name where that is unambiguous; a dotted
  path is kept as it is.
  """
  return FLAT_FIELDS.get(name, name)


def set_fields(config, **fields):
  """Sets each field (by `field_path`) on a locked config; returns it."""
  for name, value in fields.items():
    set_field(config, field_path(name), value)
  return config


def experiment_args(data_dir, workdir, **fields) -> list[str]:
  """`experiments/main.py` arguments: the tutorial config on a test data_dir."""
  fields = {"data_dir": data_dir, "download": False, "input_scaling": "unit", **fields}
  return [
    "experiments/main.py",
    "--config=experiments/configs/lenet5_cifar10.py",
    f"--workdir={workdir}",
    *(f"--config.{field_path(k)}={v}" for k, v in fields.items()),
  ]


def make_fake_cifar10(root: Path, per_batch: int = 8, archive: bool = True):
  """Writes a small CIFAR-10 in the official binary format.

  Returns (path, members' SHA-256, {split: (images, labels)}).
  """
  members = {"batches.meta.txt": ("\n".join(LABEL_NAMES) + "\n").encode()}
  train = [cifar_records(per_batch, seed=i) for i in range(5)]
  for name, (x, y) in zip(TRAIN_FILES, train):
    members[name] = to_binary(x, y)
  test = cifar_records(per_batch, seed=99)
  members["test_batch.bin"] = to_binary(*test)
  digests = {k: hashlib.sha256(v).hexdigest() for k, v in members.items()}
  split = {
    "train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
    "test": test,
  }
  if archive:
    path = root / "cifar-10-binary.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
      for name, payload in members.items():
        info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
  else:
    path = root / "cifar-10-batches-bin"
    path.mkdir(parents=True)
    for name, payload in members.items():
      (path / name).write_bytes(payload)
  return path, digests, split


def _imported(tmp_path_factory, name: str, per_batch: int):
  from actlab import data

  root = tmp_path_factory.mktemp(name)
  path, digests, split = make_fake_cifar10(root, per_batch=per_batch)
  data_dir = root / "tfds"
  data.import_cifar10(path, data_dir, expected_sha256=digests)
  return data_dir, split


@pytest.fixture(scope="session")
def fake_cifar10(tmp_path_factory):
  """A fake official archive (40 train, 8 test images) imported into TFDS."""
  return _imported(tmp_path_factory, "fake_cifar10", per_batch=8)


@pytest.fixture(scope="session")
def fake_cifar10_large(tmp_path_factory):
  """320 train, 64 test images: long enough runs to interrupt mid-epoch."""
  return _imported(tmp_path_factory, "fake_cifar10_large", per_batch=64)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
  """A live single-node SLURM cluster (tests/slurm_cluster.py) for the session.

  Skipped where the SLURM and munge programs are absent or the tests do not
  run as root; `.ci/run` installs them and sets ACTLAB_REQUIRE_SLURM=1, so
  that in CI these tests fail rather than skip when the cluster cannot run.
  """
  from slurm_cluster import SlurmCluster, missing

  absent = missing()
  why = None
  if absent:
    why = f"SLURM is not installed (no {', '.join(absent)}); as root: apt-get install"
    why += " slurm-wlm munge"
  elif os.geteuid() != 0:
    why = "the test SLURM cluster runs munged, slurmctld and slurmd as root; run as root"
  if why and os.environ.get("ACTLAB_REQUIRE_SLURM") == "1":
    pytest.fail(f"ACTLAB_REQUIRE_SLURM=1, but {why}", pytrace=False)
  if why:
    pytest.skip(why)
  cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
  yield cluster
  cluster.stop()


def two_process_args(data_dir, workdir, epochs: int) -> list[str]:
  """The multi-process tests' run: batch 16 on the 320-image fake CIFAR-10."""
  return experiment_args(data_dir, workdir, batch_size=16, num_epochs=epochs, log_every_steps=5)


def run_two_processes(data_dir, workdir, epochs: int) -> list[tuple[str, str]]:
  """Two processes of two CPU devices each, joined on loopback; (stdout, stderr) each."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        *two_process_args(data_dir, workdir, epochs),
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        f"--process_id={i}",
      ],
      cwd=ROOT,
      env=python_env(JAX_NUM_CPU_DEVICES="2"),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  outs = [p.communicate(timeout=400) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  return outs


@pytest.fixture(scope="session")
def two_process_run(fake_cifar10_large, tmp_path_factory):
  """2 epochs by two processes on loopback: (workdir, [(stdout, stderr)] per process)."""
  data_dir, _ = fake_cifar10_large
  workdir = tmp_path_factory.mktemp("two_processes")
  return workdir, run_two_processes(data_dir, workdir, epochs=2)
