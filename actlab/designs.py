"""Study designs beyond "every condition against a baseline".

A study config's `sweep()` may declare how its conditions combine
(sweep.json's `design`):

- `select`: conditions grouped by one field (`group`, e.g. the activation)
  and varying in another (`choose`, e.g. the learning rate). Per group the
  value with the highest mean *validation* accuracy is chosen, over the seeds
  every value of the group has finished (the test split plays no part), and
  the declared family compares each group at its chosen value with the
  `baseline` group at its own, next to the same comparison at a `shared`
  value.
- `factorial`: per group, a 2x2 over two fields (`factors`). Each factor's
  effect (averaged over the other) and their interaction are paired
  differences per seed, tested against 0; the family is every contrast.

Both return `stats.Comparison`s, Holm-adjusted over their family.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from actlab import stats


def field_value(sweep: stats.Sweep, condition: str, field: str) -> Any:
  """A condition's value of a dotted config field: sweep.json's fields,
  else the field of its first finished run."""
  fields = sweep.fields.get(condition, {})
  if field in fields:
    return fields[field]
  for run in sweep.ok_runs(condition).values():
    return run.field(field, None)
  return None


def _finite(x: float | None) -> bool:
  return x is not None and math.isfinite(x)


def groups(sweep: stats.Sweep, field: str) -> dict[Any, list[str]]:
  """Conditions by their value of `field`, in the sweep's order."""
  out: dict[Any, list[str]] = {}
  for c in sweep.conditions:
    out.setdefault(field_value(sweep, c, field), []).append(c)
  return out


def group_of(sweep: stats.Sweep, field: str) -> dict[str, Any]:
  """Each condition's group: its value of `field` (the inverse of `groups`)."""
  return {c: field_value(sweep, c, field) for c in sweep.conditions}


@dataclasses.dataclass(frozen=True)
class Selection:
  """Per group: the validation mean of every value, and the value chosen."""

  group_field: str
  choose_field: str
  val_means: dict[Any, dict[Any, float]]  # group -> value -> mean validation accuracy
  chosen: dict[Any, str]  # group -> chosen condition
  chosen_value: dict[Any, Any]
  at_chosen: dict[str, stats.Comparison]  # family: group at chosen vs baseline at chosen
  at_shared: dict[str, stats.Comparison]  # the same at the shared value
  baseline: Any
  shared: Any
  # group -> the values of `choose` the sweep declares but no run has finished:
  # while any are listed, each choice is among the finished values only.
  not_run: dict[Any, list[Any]] = dataclasses.field(default_factory=dict)
  # group -> the seeds every value of the group has finished, on which its
  # validation means are taken (empty: none in common, each value's own seeds).
  seeds: dict[Any, list[int]] = dataclasses.field(default_factory=dict)


def select(sweep: stats.Sweep, spec: Mapping[str, Any]) -> Selection:
  """The `select` design (see the module docstring)."""
  group_field, choose_field = spec["group"], spec["choose"]
  baseline, shared = spec["baseline"], spec.get("shared")
  val_means: dict[Any, dict[Any, float]] = {}
  chosen, chosen_value, shared_condition, not_run, seeds_used = {}, {}, {}, {}, {}
  for g, conds in groups(sweep, group_field).items():
    missing = [field_value(sweep, c, choose_field) for c in conds if not sweep.ok_runs(c)]
    if missing:
      not_run[g] = missing
    val = {
      c: {s: r.val_accuracy for s, r in sweep.ok_runs(c).items() if _finite(r.val_accuracy)}
      for c in conds
    }
    val = {c: v for c, v in val.items() if v}
    # Rates are compared on the seeds they all have (a seed is one
    # initialisation stream and data order); with none in common, on their own.
    common = set.intersection(*(set(v) for v in val.values())) if val else set()
    means = {c: float(np.mean([v[s] for s in (common or v)])) for c, v in val.items()}
    seeds_used[g] = sorted(common)
    if not means:
      continue
    val_means[g] = {field_value(sweep, c, choose_field): m for c, m in means.items()}
    best = max(means, key=means.get)
    chosen[g], chosen_value[g] = best, field_value(sweep, best, choose_field)
    for c in conds:
      if field_value(sweep, c, choose_field) == shared:
        shared_condition[g] = c
  acc = {c: v for c, v in sweep.accuracies().items() if v}

  def family(pick: Mapping[Any, str]) -> dict[str, stats.Comparison]:
    if baseline not in pick or pick[baseline] not in acc:
      return {}
    pairs = [(pick[g], pick[baseline]) for g in pick if g != baseline and pick[g] in acc]
    return stats.compare_pairs(acc, pairs)

  return Selection(
    group_field,
    choose_field,
    val_means,
    chosen,
    chosen_value,
    family(chosen),
    family(shared_condition),
    baseline,
    shared,
    not_run,
    seeds_used,
  )


@dataclasses.dataclass(frozen=True)
class Factorial:
  """Per group and contrast, the paired comparison of the contrast with 0."""

  factors: tuple[str, str]
  levels: dict[Any, tuple[tuple[Any, Any], tuple[Any, Any]]]  # group -> (low, high) per factor
  contrasts: dict[tuple[Any, str], stats.Comparison]  # (group, contrast name) -> result
  # group -> (level1, level2) -> mean over the group's complete seeds (those the contrasts use)
  cell_means: dict[Any, dict[tuple[Any, Any], float]]
  seeds: dict[Any, list[int]]  # group -> the seeds that finished all four cells


def _levels(sweep: stats.Sweep, conds: list[str], field: str) -> list[Any]:
  return list(dict.fromkeys(field_value(sweep, c, field) for c in conds))


def _contrasts(y: Mapping[tuple[int, int], float]) -> tuple[float, float, float]:
  """First factor's effect, second factor's effect, interaction, of one seed's 2x2."""
  first = (y[1, 0] + y[1, 1] - y[0, 0] - y[0, 1]) / 2
  second = (y[0, 1] + y[1, 1] - y[0, 0] - y[1, 0]) / 2
  return first, second, (y[1, 1] - y[1, 0]) - (y[0, 1] - y[0, 0])


def factorial(sweep: stats.Sweep, spec: Mapping[str, Any]) -> Factorial:
  """The `factorial` design (see the module docstring).

  With cells y[a][b] (a: first factor low/high, b: second), per seed:
  first factor's effect ((y10 + y11) - (y00 + y01)) / 2, the second's
  ((y01 + y11) - (y00 + y10)) / 2, and the interaction (y11 - y10) - (y01 - y00).
  A factor's low level is the first value met in the sweep's order.
  """
  group_field = spec["group"]
  f1, f2 = spec["factors"]
  acc = sweep.accuracies()
  per_seed: dict[tuple[Any, str], dict[int, float]] = {}
  cell_means: dict[Any, dict[tuple[Any, Any], float]] = {}
  complete: dict[Any, list[int]] = {}
  levels = {}
  for g, conds in groups(sweep, group_field).items():
    l1, l2 = _levels(sweep, conds, f1), _levels(sweep, conds, f2)
    if len(l1) != 2 or len(l2) != 2 or len(conds) != 4:
      raise ValueError(
        f"{group_field}={g}: a 2x2 needs two levels of {f1} and of {f2}, got {l1} and {l2}"
      )
    cell = {(field_value(sweep, c, f1), field_value(sweep, c, f2)): acc[c] for c in conds}
    levels[g] = ((l1[0], l1[1]), (l2[0], l2[1]))
    y = {(i, j): cell[(l1[i], l2[j])] for i in (0, 1) for j in (0, 1)}
    seeds = set.intersection(*(set(v) for v in y.values()))
    complete[g] = sorted(seeds)
    cell_means[g] = {
      k: float(np.mean([v[s] for s in complete[g]])) for k, v in cell.items() if complete[g]
    }
    for s in sorted(seeds):
      for name, value in zip((f1, f2, "interaction"), _contrasts({k: v[s] for k, v in y.items()})):
        per_seed.setdefault((g, name), {})[s] = value
  keys = {f"{g}|{name}": k for k, (g, name) in zip(per_seed, per_seed)}
  zero = {s: 0.0 for d in per_seed.values() for s in d}
  values = {label: per_seed[k] for label, k in keys.items()} | {"0": zero}
  compared = stats.compare_pairs(values, [(label, "0") for label in keys])
  contrasts = {keys[label]: c for label, c in compared.items()}
  return Factorial((f1, f2), levels, contrasts, cell_means, complete)
