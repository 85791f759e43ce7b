"""The package's modules form no import circle, and library code never reads the global FLAGS.

The guide's rule "lower modules never import higher ones" is checked as its consequence that
can be computed: the graph of imports between rae_tf modules (module-level and function-level
imports alike: a deferred import that closes a circle is still a circle) has no cycle. It reads
the source with `ast`, so it costs no TensorFlow import.
"""
import ast
import pathlib

from conftest import ROOT

PACKAGE = "rae_tf"


def _module_files(root: pathlib.Path, package: str):
  files = {}
  for path in sorted((root / package).rglob("*.py")):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    files[".".join(parts)] = path
  return files


def import_graph(root, package=PACKAGE):
  """Maps each module of `package` under `root` to the set of package modules it imports.

  `from a.b import c` counts as importing `a.b.c` when that is a module, else `a.b`; an import
  of a package's own submodule does not count as importing the package (Python runs the
  package's `__init__` first, but that is not a dependency the code chose).
  """
  root = pathlib.Path(root)
  files = _module_files(root, package)

  def owner(name):
    while name and name not in files:
      name = name.rpartition(".")[0]
    return name

  graph = {}
  for module, path in files.items():
    is_package = path.name == "__init__.py"
    here = module if is_package else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
      if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        if node.level:
          base = here.split(".")[:len(here.split(".")) - (node.level - 1)]
          source = ".".join(base + ([node.module] if node.module else []))
        else:
          source = node.module or ""
        submodules = [f"{source}.{alias.name}" for alias in node.names
                      if f"{source}.{alias.name}" in files]
        names = submodules or [source]
      else:
        continue
      for name in names:
        target = owner(name) if name.split(".")[0] == package else ""
        if target and target != module:
          targets.add(target)
    graph[module] = targets
  return graph


def find_cycle(graph):
  """Returns one import circle as a list of modules (first == last), or None."""
  state = {}  # module -> "open" while on the DFS path, "done" after.
  path = []

  def visit(module):
    state[module] = "open"
    path.append(module)
    for target in sorted(graph.get(module, ())):
      if state.get(target) == "open":
        return path[path.index(target):] + [target]
      if target not in state:
        cycle = visit(target)
        if cycle:
          return cycle
    path.pop()
    state[module] = "done"
    return None

  for module in sorted(graph):
    if module not in state:
      cycle = visit(module)
      if cycle:
        return cycle
  return None


def test_the_package_has_no_import_circle():
  graph = import_graph(ROOT)
  assert len(graph) > 40 and sum(map(len, graph.values())) > 100  # It saw the package.
  cycle = find_cycle(graph)
  assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checker_finds_a_planted_circle(tmp_path):
  pkg = tmp_path / PACKAGE
  (pkg / "sub").mkdir(parents=True)
  (pkg / "__init__.py").write_text("")
  (pkg / "low.py").write_text("import os\n")
  (pkg / "sub" / "__init__.py").write_text("from rae_tf.sub import leaf\n")
  (pkg / "sub" / "leaf.py").write_text("from rae_tf import low\n")
  assert find_cycle(import_graph(tmp_path)) is None  # package -> own submodule is no circle.
  # A deferred (function-level) relative import back up closes a circle.
  (pkg / "low.py").write_text("def f():\n  from .sub.leaf import g\n")
  assert find_cycle(import_graph(tmp_path)) == ["rae_tf.low", "rae_tf.sub.leaf", "rae_tf.low"]


def test_library_code_never_reads_the_global_flags():
  # Scripts own absl's global FLAGS; rae_tf.cli's helpers take it as a default argument only.
  # (A private FlagValues, as experiments.parse_train_flags builds, is not global state.)
  readers = set()
  for module, path in _module_files(pathlib.Path(ROOT), PACKAGE).items():
    for node in ast.walk(ast.parse(path.read_text())):
      if (isinstance(node, ast.Attribute) and node.attr == "FLAGS") or (
          isinstance(node, ast.Name) and node.id == "FLAGS"):
        readers.add(module)
  assert readers == {"rae_tf.cli"}, f"modules reading absl's global FLAGS: {sorted(readers)}"
