"""Data parallelism: 8 simulated devices, and 2 processes on loopback."""

import functools
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
  NUM_TEST_DEVICES,
  ROOT,
  python_env,
  run_two_processes,
  two_process_args,
)
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from test_train import small_config

from actlab import build, data, distributed, steps, train, writers

# Data-parallel runs sum gradients in another order than one device does;
# after a few Adam steps parameters agree to this (float32) tolerance.
RTOL, ATOL = 1e-4, 1e-5


def _mesh(n):
  return build.make_mesh(jax.devices()[:n])


def _run_steps(mesh, num_steps=4, batch_size=16):
  # The plain layers: what is compared here is sharding, not the blocked convolutions.
  cfg = small_config(batch_size=batch_size, fast_layers="off")
  model = build.make_model(cfg)
  replicated = NamedSharding(mesh, P())
  state = jax.jit(lambda r: build.create_train_state(cfg, model, r), out_shardings=replicated)(
    jax.random.key(0)
  )
  rng = np.random.default_rng(0)
  x = jax.device_put(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), replicated)
  y = jax.device_put(rng.integers(0, 10, (64,), dtype=np.int32), replicated)
  common = dict(
    batch_size=batch_size,
    preprocess=functools.partial(data.scale_images, scaling="unit"),
    batch_sharding=NamedSharding(mesh, P("data")),
  )
  step = jax.jit(functools.partial(steps.train_on_indices, **common))
  gather = jax.jit(functools.partial(steps.gather_batch, **common))
  order = jnp.arange(64)
  sums = steps.zeros()
  for i in range(num_steps):
    state, sums = step(state, sums, x, y, order, jnp.int32(i))
  return state, gather(x, y, order, jnp.int32(0))


def test_eight_devices_match_one_and_the_batch_is_sharded():
  assert jax.device_count() == NUM_TEST_DEVICES == 8
  one, batch1 = _run_steps(_mesh(1))
  eight, batch8 = _run_steps(_mesh(8))
  # The batch is split 8 ways along its first axis, one slice per device.
  assert batch8["image"].sharding.spec == P("data")
  shards = batch8["image"].addressable_shards
  assert len({s.device for s in shards}) == 8
  assert all(s.data.shape == (2, 32, 32, 3) for s in shards)
  assert len(batch1["image"].addressable_shards) == 1
  # Parameters stay replicated: every device holds the whole array.
  leaf = jax.tree.leaves(eight.params)[0]
  assert leaf.sharding.is_fully_replicated and len(leaf.addressable_shards) == 8
  jax.tree.map(
    functools.partial(np.testing.assert_allclose, rtol=RTOL, atol=ATOL),
    jax.device_get(eight.params),
    jax.device_get(one.params),
  )


def test_batch_that_does_not_divide_over_devices_is_refused(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  with pytest.raises(ValueError, match="does not divide over the 8 devices; use a multiple of 8"):
    train.train_and_evaluate(small_config(data_dir, batch_size=12), tmp_path / "wd")


def test_bfloat16_compute_keeps_float32_params(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  state = train.train_and_evaluate(small_config(data_dir, dtype="bfloat16"), tmp_path / "wd")
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state.params))
  assert np.isfinite(train.final_summary(tmp_path / "wd")["final_eval_loss"])


# ---------------------------------------------------------------------------
# Two processes on loopback, two CPU devices each, gloo collectives
# ---------------------------------------------------------------------------


def _one_process(data_dir, workdir, epochs, devices="1"):
  out = subprocess.run(
    [sys.executable, *two_process_args(data_dir, workdir, epochs)],
    cwd=ROOT,
    env=python_env(JAX_NUM_CPU_DEVICES=devices),
    capture_output=True,
    text=True,
    timeout=400,
  )
  assert out.returncode == 0, out.stderr[-4000:]
  return out


def _params(workdir, data_dir):
  _, state = train.restore_run(workdir)
  return jax.device_get(state.params), state


@pytest.fixture(scope="module")
def single_process_run(fake_cifar10_large, tmp_path_factory):
  data_dir, _ = fake_cifar10_large
  wd = tmp_path_factory.mktemp("single")
  _one_process(data_dir, wd, epochs=2)
  return wd


def test_two_processes_match_one_and_only_process_zero_writes(
  fake_cifar10_large, single_process_run, two_process_run
):
  data_dir, _ = fake_cifar10_large
  wd, ((out0, _), (out1, _)) = two_process_run
  assert "Total params: 697,046" in out0 and "Epoch 2/2" in out0
  # Process 1 prints nothing of its own. Gloo's connection notes aside, which
  # its C++ side writes unbuffered and may break across lines.
  gloo = (
    r"\[Gloo\] Rank \d+ is connected to\s*\d+\s*peer ranks\."
    r"\s*Expected number of connected peer ranks is\s*:\s*\d+"
  )
  rest = re.sub(gloo, "", out1).splitlines()
  notes = r"\[Gloo\]|\s*\d+ peer ranks\."
  assert [ln for ln in rest if ln.strip() and not re.match(notes, ln)] == []
  assert len(list(wd.glob("events.out.tfevents.*"))) == 1
  ours, theirs = writers.read_metrics(wd), writers.read_metrics(single_process_run)
  assert [(r["split"], r["step"]) for r in ours] == [(r["split"], r["step"]) for r in theirs]
  two, _ = _params(wd, data_dir)
  one, _ = _params(single_process_run, data_dir)
  # 40 Adam steps: Adam divides by sqrt(v), which magnifies the reordering
  # differences of near-zero gradients, hence a looser absolute tolerance.
  diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()), two, one))
  assert max(diffs) < 2e-4, max(diffs)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=RTOL, atol=2e-4), two, one)
  evals = lambda rs: [r["accuracy"] for r in rs if r["split"] == "eval"]  # noqa: E731
  np.testing.assert_allclose(evals(ours), evals(theirs), atol=1 / 64)


def test_checkpoints_move_between_two_processes_and_one(fake_cifar10_large, tmp_path):
  data_dir, _ = fake_cifar10_large
  a = tmp_path / "two_then_one"
  run_two_processes(data_dir, a, epochs=1)
  out = _one_process(data_dir, a, epochs=2)
  assert "Resuming from checkpoint 20" in out.stderr
  _, state = _params(a, data_dir)
  assert int(state.step) == 40 and int(state.epoch) == 2

  b = tmp_path / "one_then_two"
  _one_process(data_dir, b, epochs=1, devices="4")
  outs = run_two_processes(data_dir, b, epochs=2)
  assert "Resuming from checkpoint 20" in outs[0][1]
  _, state = _params(b, data_dir)
  assert int(state.step) == 40 and int(state.epoch) == 2


@pytest.mark.parametrize(
  "batch_size, cores, expected",
  [(256, 1, 1), (256, 2, 2), (256, 3, 2), (256, 12, 8), (10, 4, 2), (7, 4, 1), (96, 64, 8)],
)
def test_cpu_devices_for_splits_the_batch_over_the_cores(batch_size, cores, expected):
  assert distributed.cpu_devices_for(batch_size, cores) == expected


def _devices_in_fresh_process(code: str, **env) -> list[str]:
  clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "SLURM_NTASKS")}
  out = subprocess.run(
    [sys.executable, "-c", "from actlab import distributed\n" + code],
    env={**clean, "JAX_PLATFORMS": "cpu", **env},
    capture_output=True,
    text=True,
    check=True,
    timeout=300,
  )
  return out.stdout.split()


def test_use_cpu_cores_gives_one_device_per_core_unless_the_count_is_fixed():
  report = "import jax; print(n, jax.device_count())"
  auto = _devices_in_fresh_process(f"n = distributed.use_cpu_cores(256)\n{report}")
  expected = distributed.cpu_devices_for(256)
  assert auto == [str(expected), str(expected)]
  # An explicit count, e.g. --cpu_devices=3.
  assert _devices_in_fresh_process(f"n = distributed.use_cpu_cores(256, 3)\n{report}") == ["3", "3"]
  # XLA_FLAGS' count wins over "auto", and so does a started backend.
  forced = _devices_in_fresh_process(
    f"n = distributed.use_cpu_cores(256)\n{report}",
    XLA_FLAGS="--xla_force_host_platform_device_count=5",
  )
  assert forced == ["0", "5"]
  started = _devices_in_fresh_process(
    f"import jax; k = jax.device_count(); n = distributed.use_cpu_cores(256, 4)\n{report}"
  )
  assert started == ["0", "1"]
  with pytest.raises(subprocess.CalledProcessError) as err:
    _devices_in_fresh_process("distributed.use_cpu_cores(256, 0)")
  assert "at least 1" in err.value.stderr
