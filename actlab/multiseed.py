"""Many seeds of one condition in one compiled program (`config.seeds_per_program`).

One LeNet5 step uses a small fraction of a GPU or TPU. With
`--config.seeds_per_program=N` the parameters, optimizer state and RNG of N
seeds are stacked and every step of `actlab.steps` is `jax.vmap`ped over
them, so one program trains all N at once. Each seed keeps exactly the data
order of its separate run (`steps.epoch_permutation` of its own key, the
same bits under vmap) and writes an ordinary run folder `seed_<s>/`
(config.json, metrics.jsonl, checkpoints): any seed can later be resumed,
reported or restored on its own. The stacked steps compute the same
functions as the separate runs; XLA may fuse and order a batched program's
float32 arithmetic differently, so metrics agree to float32 rounding rather
than bit for bit (see tests/test_multiseed.py).

How the seeds share the program is `config.seed_batching`: "vmap" batches
every step over the seed axis (one wide step: what fills an accelerator),
"unroll" writes each seed's step out one after another in the program (on
CPU a single run's speed per seed, where XLA's batched convolutions are
several times slower; compiling takes longer the more seeds), and "auto"
picks unroll on CPU devices and vmap elsewhere (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from actlab import build, checkpoint, models, writers
from actlab import config as config_lib
from actlab import steps as steps_lib
from actlab import train as train_lib
from actlab.faults import NonFiniteError, NonFiniteGuard, Preempted, StopRequests
from actlab.steps import TrainState
from actlab.workdir import (
  WorkdirError,
  WorkdirLock,
  check_config,
  prepare_workdir,
  record_provenance,
  write_config,
)

Array = jax.Array


def seed_dirs(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> list[Path]:
  """`workdir/seed_<s>` for the seeds `config` trains together (seed..seed+N-1)."""
  return [Path(workdir) / f"seed_{config.seed + k}" for k in range(config.seeds_per_program)]


def final_summary(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict[str, Any]:
  """`train.final_summary` of the run `config` trains in `workdir`; with
  seeds_per_program > 1, of each seed's, by folder name (`seed_<s>`)."""
  if config.get("seeds_per_program", 1) == 1:
    return train_lib.final_summary(workdir)
  return {d.name: train_lib.final_summary(d) for d in seed_dirs(config, workdir)}


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str | os.PathLike,
  *,
  allow_config_change: bool = False,
  **parts: Any,
) -> TrainState | list[TrainState]:
  """`train.train_and_evaluate` for seeds config.seed..config.seed+N-1
  (N = config.seeds_per_program) in one program, into `workdir/seed_<s>/`;
  with N = 1, `train.train_and_evaluate` itself (`parts`: its model, tx, data).

  Returns each seed's final state (N = 1: the run's).
  """
  if config.get("seeds_per_program", 1) == 1:
    return train_lib.train_and_evaluate(
      config, workdir, allow_config_change=allow_config_change, **parts
    )
  config_lib.validate(config)
  given = sorted(k for k, v in parts.items() if v is not None)
  if given:
    raise config_lib.ConfigError(
      f"config.seeds_per_program={config.seeds_per_program} trains the config's own model,"
      f" optimizer and dataset; {', '.join(given)} cannot be passed with it. Pass them"
      " with --config.seeds_per_program=1 (one run per seed)."
    )
  configs = []
  for k in range(config.seeds_per_program):
    c = ml_collections.ConfigDict(config.to_dict())
    c.seed = config.seed + k
    configs.append(c)
  return train_seeds(configs, seed_dirs(config, workdir), allow_config_change=allow_config_change)


def check_group(configs: Sequence[ml_collections.ConfigDict]) -> None:
  """Refuses seeds that cannot share a program, saying why and what to do instead."""
  if not configs:
    raise config_lib.ConfigError("No seeds to train.")
  n = configs[0].seeds_per_program
  if jax.process_count() > 1:
    raise config_lib.ConfigError(
      f"config.seeds_per_program={n} runs in one process, and this run has"
      f" {jax.process_count()} processes: a multi-process run shards one seed's batches"
      " over hosts. Run the seeds as separate jobs (a sweep), or set"
      " --config.seeds_per_program=1."
    )
  first = config_lib.flatten(configs[0].to_dict())
  for c in configs[1:]:
    other = config_lib.flatten(c.to_dict())
    diff = sorted(
      k for k in first.keys() | other.keys() if k != "seed" and first.get(k) != other.get(k)
    )
    if diff:
      raise config_lib.ConfigError(
        f"Seeds trained in one program must differ only in their seed; {', '.join(diff)} differ."
      )
  seeds = [c.seed for c in configs]
  if len(set(seeds)) != len(seeds):
    raise config_lib.ConfigError(f"Seeds trained in one program must differ; got {seeds}.")
  c = configs[0]
  if c.diagnostics.enabled:
    raise config_lib.ConfigError(
      f"config.seeds_per_program={n} cannot be combined with config.diagnostics.enabled:"
      " diagnostics are recorded per run, by the separate program. Set"
      " --config.seeds_per_program=1 or --config.diagnostics.enabled=False."
    )
  if c.early_stopping_patience:
    raise config_lib.ConfigError(
      f"config.seeds_per_program={n} cannot be combined with"
      f" config.early_stopping_patience={c.early_stopping_patience}: the seeds of one program"
      " train the same epochs, and each seed would stop at its own. Set"
      " --config.seeds_per_program=1 or --config.early_stopping_patience=0."
    )


def train_seeds(
  configs: Sequence[ml_collections.ConfigDict],
  workdirs: Sequence[str | os.PathLike],
  *,
  allow_config_change: bool = False,
) -> list[TrainState]:
  """Trains runs that differ only in their seed in one program, each in its workdir.

  Every workdir is an ordinary run folder, locked, checked against its saved
  config and resumed from its own checkpoints; all must stand at the same
  step (they do unless one was continued alone). Raises as
  `train.train_and_evaluate` does; `Preempted` after saving every seed.
  """
  for c in configs:
    config_lib.validate(c)
  check_group(configs)
  dirs = [prepare_workdir(w) for w in workdirs]
  with contextlib.ExitStack() as stack:
    for d in dirs:
      stack.enter_context(WorkdirLock(d))
    stop = stack.enter_context(StopRequests())
    group = _prepare(list(configs), dirs, allow_config_change, stop)
    try:
      stop.arm()  # from here on, SIGTERM/SIGINT save every seed before stopping
      group.run(stop)
    finally:
      group.close()
    return group.unstack(group.state)


def _prepare(
  configs: list[ml_collections.ConfigDict],
  dirs: list[Path],
  allow_config_change: bool,
  stop: StopRequests,
) -> _Group:
  """Data on device, checks, each seed's initial or restored state, the vmapped steps."""
  config = configs[0]
  with stop.interruptible() if config.data.download else contextlib.nullcontext():
    train, evals, test = build.load_splits(config)
  stop.check()
  input_shape = tuple(train.images.shape[1:])
  mesh = build.make_mesh()
  train_data = build.train_on_device(train, mesh)
  build.check_batch(config, train_data.num_examples)
  model = build.make_model(config)
  for c, d in zip(configs, dirs):
    check_config(c, d, allow_config_change)
  preprocess = build.make_preprocess(config, train_data.images)
  print(models.summary(model, input_shape), flush=True)
  stop.check()
  # One optax transformation for all seeds: the stacked states share it.
  tx = build.make_optimizer(config)
  saved, ckpts = [], []
  try:
    for c, d in zip(configs, dirs):
      init = functools.partial(build.create_train_state, c, model, tx=tx, input_shape=input_shape)
      s, ckpt = train_lib._initial_or_restored(c, d, mesh, init)  # noqa: SLF001
      saved.append(s)
      ckpts.append(ckpt)
    at = [int(s["state"].step) for s in saved]
    if len(set(at)) > 1:
      where = ", ".join(f"{d.name}: step {a}" for d, a in zip(dirs, at))
      raise WorkdirError(
        f"The seeds' checkpoints stand at different steps ({where}), so they cannot"
        " continue in one program. Continue each with --config.seeds_per_program=1"
        " (the same data order; the sweep or command is otherwise unchanged)."
      )
    stop.check()
    for c, d, s in zip(configs, dirs, saved):
      write_config(c, d)
      record_provenance(d, int(s["state"].step))
    stacked = jax.device_put(
      jax.tree.map(lambda *xs: jnp.stack(xs), *saved), NamedSharding(mesh, P())
    )
    eval_data, test_data = build.eval_and_test_on_device(evals, test, config.batch_size, mesh)
    steps = compile_steps(config, model, preprocess, mesh, len(configs))
    return _Group(configs, dirs, mesh, stacked, ckpts, train_data, eval_data, test_data, steps)
  except BaseException:
    for ckpt in ckpts:
      ckpt.close()
    raise


def seed_batching(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> str:
  """ "vmap" or "unroll": `config.seed_batching`, with "auto" resolved for the
  mesh's devices (unroll on CPU, vmap on accelerators)."""
  how = config.get("seed_batching", "auto")
  if how == "auto":
    how = "unroll" if mesh.devices.flat[0].platform == "cpu" else "vmap"
  return how


def _over_seeds(fn: Any, in_axes: tuple[int | None, ...], how: str) -> Any:
  """`fn` over the leading seed axis of the arguments whose axis is 0 (the
  others shared), results stacked: batched (`jax.vmap`), or unrolled, each
  seed's call written out one after another in the same program. Not
  `jax.lax.map`: XLA's CPU backend runs the gradient convolutions of a loop
  body about 20x slower than the same ones outside a loop
  (scripts/benchmark_loop_step.py; docs/benchmarks.md)."""
  if how == "vmap":
    return jax.vmap(fn, in_axes=in_axes)

  def unrolled(*args: Any) -> Any:
    seeds = {jax.tree.leaves(a)[0].shape[0] for a, axis in zip(args, in_axes) if axis == 0}
    (n,) = seeds
    outs = [
      fn(
        *(
          jax.tree.map(lambda x, k=k: x[k], a) if axis == 0 else a for a, axis in zip(args, in_axes)
        )
      )
      for k in range(n)
    ]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return unrolled


def compile_steps(
  config: ml_collections.ConfigDict,
  model: Any,
  preprocess: Any,
  mesh: jax.sharding.Mesh,
  num_seeds: int,
) -> build.CompiledSteps:
  """`build.compile_steps`' functions over a leading seed axis: states, metric
  sums, parameters and epoch orders are stacked; the data and the step index
  are shared."""
  replicated = NamedSharding(mesh, P())
  common = build.step_options(config, preprocess, mesh)
  how = seed_batching(config, mesh)
  train = jax.jit(
    _over_seeds(
      functools.partial(steps_lib.train_on_indices, **common), (0, 0, None, None, 0, None), how
    ),
    donate_argnums=(0, 1),
  )
  evaluate = jax.jit(
    _over_seeds(
      functools.partial(steps_lib.eval_on_slice, apply_fn=build.apply_fn(model), **common),
      (0, 0, None, None, None, None),
      how,
    ),
    donate_argnums=0,
  )
  permutation = jax.jit(
    jax.vmap(steps_lib.epoch_permutation, in_axes=(0, 0, None)), static_argnums=2
  )

  def zeros(keys: tuple[str, ...] = steps_lib.TRAIN_METRICS) -> dict[str, Array]:
    return {k: jnp.zeros((num_seeds,), jnp.float32) for k in keys}

  return build.CompiledSteps(
    train=train,
    train_diagnosed=None,
    eval=evaluate,
    permutation=permutation,
    zeros=jax.jit(zeros, static_argnums=0, out_shardings=replicated),
    copy=jax.jit(lambda tree: jax.tree.map(jnp.copy, tree), out_shardings=replicated),
  )


def _unstacker(num_seeds: int) -> Any:
  """A jitted function from a stacked pytree to the list of each seed's (one dispatch)."""

  def unstack(tree: Any) -> list[Any]:
    return [jax.tree.map(lambda a, s=s: a[s], tree) for s in range(num_seeds)]

  return jax.jit(unstack)


def _seed_values(sums: dict[str, Array]) -> list[dict[str, np.ndarray]]:
  """Stacked metric sums as each seed's (one transfer)."""
  host = jax.device_get(sums)
  n = len(next(iter(host.values())))
  return [{k: v[s] for k, v in host.items()} for s in range(n)]


class _Group:
  """The epoch loop of `train._Loop` over stacked seeds: each step trains
  every seed; each seed's records, checkpoints and selection are its own."""

  def __init__(
    self,
    configs: list[ml_collections.ConfigDict],
    dirs: list[Path],
    mesh: jax.sharding.Mesh,
    saved: dict[str, Any],
    ckpts: list[checkpoint.Checkpoints],
    train_data: build.DeviceSplit,
    evals: build.DeviceSplit,
    test: build.DeviceSplit | None,
    steps: build.CompiledSteps,
  ):
    self.config, self.configs, self.dirs, self.mesh = configs[0], configs, dirs, mesh
    self.ckpts = ckpts
    self.train_data, self.evals, self.test, self.steps = train_data, evals, test, steps
    self.state, self.totals = saved["state"], saved["epoch_totals"]
    self.selected = saved["selected"]
    host = jax.device_get(self.selected)
    self.selected_epoch = [int(e) for e in host["epoch"]]
    self.selected_accuracy = [np.float32(a) for a in host["eval_accuracy"]]
    self.steps_per_epoch = train_data.num_examples // self.config.batch_size
    self.writers = [writers.MetricsWriter(d) for d in dirs]
    self.console = writers.ConsoleProgress(self.config.num_epochs, self.steps_per_epoch)
    self.guards = [NonFiniteGuard(c, ck) for c, ck in zip(configs, ckpts)]
    self.step = int(self.state.step[0])
    self.first_epoch = int(self.state.epoch[0])
    self.pending: tuple[dict[str, Array], dict[str, Array], int, int, int, bool] | None = None
    self.trained = False
    self.unstack = _unstacker(len(configs))

  def run(self, stop: StopRequests) -> None:
    for epoch in range(self.first_epoch, self.config.num_epochs):
      self._train_epoch(epoch, stop)
    self._test_once()

  def close(self) -> None:
    for ckpt in self.ckpts:
      ckpt.close()
    for w in self.writers:
      w.close()

  def _train_epoch(self, epoch: int, stop: StopRequests) -> None:
    self.console.start_epoch(epoch + 1)
    self.trained = True
    t0 = time.perf_counter()
    blocked0 = [ck.seconds_blocked for ck in self.ckpts]
    order = self.steps.permutation(self.state.rng, self.state.epoch, self.train_data.num_examples)
    interval = self.steps.zeros()
    data = self.train_data
    for i in range(self.step - epoch * self.steps_per_epoch, self.steps_per_epoch):
      self.state, interval = self.steps.train(
        self.state, interval, data.images, data.labels, order, jnp.int32(i)
      )
      self.step += 1
      self._flush_logs()  # the last interval, read while this step runs
      last = i + 1 == self.steps_per_epoch
      boundary = last or (i + 1) % self.config.log_every_steps == 0
      stopping = stop.signum is not None
      every = self.config.checkpoint_every_steps
      save_now = stopping or (every > 0 and self.step % every == 0 and not last)
      if save_now or boundary:
        self.totals = steps_lib.accumulate(self.totals, interval)
        self.pending = (interval, self.totals, self.step, epoch + 1, i + 1, not boundary)
        interval = self.steps.zeros()
      if save_now:
        self._flush_logs()
        self._save()
        if stopping:
          self._stop(epoch, stop)
    self._flush_logs()
    self._end_epoch(epoch, t0, blocked0)

  def _flush_logs(self) -> None:
    """Logs each seed's finished interval; applies each seed's non-finite guard."""
    if self.pending is None:
      return
    sums, totals, step, epoch, done, partial = self.pending
    self.pending = None
    summaries = [train_lib._summarise(s) for s in _seed_values(sums)]  # noqa: SLF001
    running = [train_lib._summarise(s) for s in _seed_values(totals)]  # noqa: SLF001
    self.console.update(
      done, *(float(np.mean([r[k] for r in running])) for k in ("loss", "accuracy"))
    )
    for s, summary in enumerate(summaries):
      if not partial:
        self.writers[s].write("train_interval", step, epoch, **summary)
      if summary.get("skipped"):
        self._guard(s, summary)

  def _guard(self, s: int, summary: dict[str, float]) -> None:
    try:
      self.guards[s].check(summary, self.unstack(self.state)[s])
    except NonFiniteError as e:
      raise NonFiniteError(
        f"{self.dirs[s]} (seed {self.configs[s].seed}): {e} The other seeds of its program"
        " stopped with it, at their last checkpoints; continue them with"
        " --config.seeds_per_program=1."
      ) from None

  def _save(self) -> None:
    stacked = {"state": self.state, "epoch_totals": self.totals, "selected": self.selected}
    for ckpt, tree in zip(self.ckpts, self.unstack(stacked)):
      ckpt.save(self.step, tree)

  def _stop(self, epoch: int, stop: StopRequests) -> None:
    for ckpt in self.ckpts:
      ckpt.wait()
    signum = stop.signum or signal.SIGTERM
    for w in self.writers:
      w.write("preempted", self.step, epoch + 1, signal=signal.Signals(signum).name)
    raise Preempted(self.step, signum, self.dirs[0].parent)

  def _evaluate(self, params: Any, split: build.DeviceSplit) -> list[dict[str, float]]:
    sums = self.steps.zeros(steps_lib.EVAL_METRICS)
    for i in range(split.num_examples // self.config.batch_size):
      sums = self.steps.eval(sums, params, split.images, split.labels, split.mask, jnp.int32(i))
    return [train_lib._summarise(s) for s in _seed_values(sums)]  # noqa: SLF001

  def _end_epoch(self, epoch: int, t0: float, blocked0: list[float]) -> None:
    train_metrics = [train_lib._summarise(s) for s in _seed_values(self.totals)]  # noqa: SLF001
    eval_metrics = self._evaluate(self.state.params, self.evals)
    self._select(epoch, [np.float32(m["accuracy"]) for m in eval_metrics])
    self.state = self.state.replace(epoch=self.state.epoch + 1)
    self.totals = self.steps.zeros()
    self._save()
    seconds = time.perf_counter() - t0
    mean = lambda ms, k: float(np.mean([m[k] for m in ms]))  # noqa: E731
    self.console.end_epoch(
      seconds,
      loss=mean(train_metrics, "loss"),
      acc=mean(train_metrics, "accuracy"),
      val_loss=mean(eval_metrics, "loss"),
      val_acc=mean(eval_metrics, "accuracy"),
    )
    for s, w in enumerate(self.writers):
      w.write(
        "train",
        self.step,
        epoch + 1,
        **train_metrics[s],
        seconds=seconds,
        ms_per_step=1000.0 * seconds / self.steps_per_epoch,
        checkpoint_seconds=self.ckpts[s].seconds_blocked - blocked0[s],
      )
      w.write("eval", self.step, epoch + 1, **eval_metrics[s])

  def _select(self, epoch: int, accuracies: list[np.float32]) -> None:
    """Keeps each seed's parameters when its eval accuracy is its best so far."""
    better = [a > best for a, best in zip(accuracies, self.selected_accuracy)]
    if not any(better):
      return
    for s, b in enumerate(better):
      if b:
        self.selected_epoch[s], self.selected_accuracy[s] = epoch + 1, accuracies[s]
    self.selected = _select_where(
      jnp.asarray(better),
      self.state.params,
      self.selected,
      jnp.asarray(self.selected_epoch, jnp.int32),
      jnp.asarray(self.selected_accuracy, jnp.float32),
    )

  def _test_once(self) -> None:
    """Each seed's test split, once, at its selected epoch (see `train._Loop._test_once`)."""
    if self.test is None:
      return
    due = [
      bool(self.selected_epoch[s])
      and (self.trained or not any(r["split"] == "test" for r in writers.read_metrics(d)))
      for s, d in enumerate(self.dirs)
    ]
    if not any(due):
      return
    test_metrics = self._evaluate(self.selected["params"], self.test)
    for s, w in enumerate(self.writers):
      if due[s]:
        w.write(
          "test",
          self.step,
          self.selected_epoch[s],
          **test_metrics[s],
          selected_epoch=self.selected_epoch[s],
          eval_accuracy=float(self.selected_accuracy[s]),
          split_name=self.config.data.test_split or "test",
        )


@jax.jit
def _select_where(
  better: Array, params: Any, selected: dict[str, Any], epochs: Array, accuracies: Array
) -> dict[str, Any]:
  """The selected parameters with those of the `better` seeds replaced (bit copies)."""

  def pick(new: Array, old: Array) -> Array:
    return jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

  return {
    "params": jax.tree.map(pick, params, selected["params"]),
    "epoch": epochs,
    "eval_accuracy": accuracies,
  }
