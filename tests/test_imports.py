"""Imports inside actlab flow one way: no module imports one that imports it back.

Read from the source with `ast` (nothing is imported), counting imports
inside functions too, since a late import is still a dependency. The nodes
are actlab's top-level modules and subpackages (`actlab.activations` is one
node); `if TYPE_CHECKING:` imports are annotations only and do not count.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "actlab"


def _module_name(path: Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _node(name: str) -> str:
  """The graph node of a module: actlab.X for every actlab.X.Y."""
  return ".".join(name.split(".")[:2])


def _is_type_checking(node: ast.If) -> bool:
  test = node.test
  return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
    isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
  )


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
  """The actlab modules `tree` imports (a name imported from a package counts
  as that submodule when it is one)."""
  found: set[str] = set()
  stack = [tree]
  while stack:
    node = stack.pop()
    if isinstance(node, ast.If) and _is_type_checking(node):
      stack.extend(node.orelse)
      continue
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
      subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
      found.update(subs or [base])
    stack.extend(ast.iter_child_nodes(node))
  return {m for m in found if m == "actlab" or m.startswith("actlab.")}


def import_graph() -> dict[str, set[str]]:
  files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
  graph: dict[str, set[str]] = {}
  for name, path in files.items():
    targets = _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", set(files))
    edges = {_node(t) for t in targets} - {_node(name), "actlab"}
    graph.setdefault(_node(name), set()).update(edges)
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of `graph` as [a, b, ..., a], or None."""
  state: dict[str, int] = {}  # 1: on the current path, 2: done
  path: list[str] = []

  def visit(n: str) -> list[str] | None:
    state[n] = 1
    path.append(n)
    for m in sorted(graph.get(n, ())):
      if state.get(m) == 1:
        return path[path.index(m) :] + [m]
      if m not in state and (cycle := visit(m)):
        return cycle
    path.pop()
    state[n] = 2
    return None

  for n in sorted(graph):
    if n not in state and (cycle := visit(n)):
      return cycle
  return None


def test_no_import_cycle_inside_actlab():
  cycle = find_cycle(import_graph())
  assert cycle is None, (
    "actlab's modules import each other in a cycle: "
    + " -> ".join(cycle or [])
    + ". Move what both need into the lower module (DESIGN.md: activations ->"
    " layers, models -> data, checkpoint, distributed -> build -> train -> sweep, stats)."
  )


def test_the_cycle_finder_finds_cycles():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize(
  "low, high",
  [
    ("actlab.activations", "actlab.build"),
    ("actlab.config", "actlab.build"),
    ("actlab.distributed", "actlab.sweep"),
    ("actlab.steps", "actlab.train"),
  ],
)
def test_lower_modules_do_not_import_higher_ones(low, high):
  graph = import_graph()
  assert high not in graph[low], f"{low} imports {high}, a module above it."
