"""The dependency graph of docs/architecture.md, checked against the source: which package may
import which, and no import cycle between modules."""

import ast
import graphlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("dcgan_common", "trainer", "components", "serving", "pipeline", "dcgan_kfp", "bench")
# What each package may import of the project (docs/architecture.md).
ALLOWED = {
    "dcgan_common": set(),
    "trainer": {"dcgan_common"},
    "components": {"dcgan_common"},
    "serving": {"dcgan_common"},
    "pipeline": {"components", "dcgan_common"},
    "dcgan_kfp": {"pipeline", "components", "dcgan_common"},
}


def modules() -> dict[str, str]:
    """Dotted module name -> file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for directory, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    found[dotted.removesuffix(".__init__")] = path
    return found


def imported_modules(path: str, known: set[str]) -> set[str]:
    """The project modules a file imports, anywhere in it (a function-level import counts:
    it runs too). `from package import name` counts as package.name when that is a module."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                imported.add(child if child in known else node.module)
    return imported & known


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {module: imported_modules(path, set(found)) - {module}
            for module, path in found.items()}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (module -> the modules it imports), or None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return err.args[1]
    return None


def test_every_package_imports_only_what_the_architecture_allows():
    for module, imported in import_graph().items():
        package = module.split(".")[0]
        if package in ALLOWED:
            others = {name.split(".")[0] for name in imported} - {package}
            assert others <= ALLOWED[package], f"{module} imports {sorted(others - ALLOWED[package])}"


def test_no_module_imports_itself_through_others():
    assert cycle(import_graph()) is None, f"import cycle: {' -> '.join(cycle(import_graph()))}"


@pytest.mark.parametrize("graph, found", [
    ({"a": {"b"}, "b": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
])
def test_the_cycle_check_finds_a_cycle_and_only_a_cycle(graph, found):
    assert (cycle(graph) is not None) == found


def test_a_function_level_import_counts(tmp_path):
    """pipeline/console.py imported pipeline/local_runner.py inside functions, and
    local_runner imported console under `if __name__ == "__main__"`: a cycle all the same."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from pipeline import console\n")
    assert imported_modules(str(path), {"pipeline.console", "pipeline"}) == {"pipeline.console"}


def test_building_the_dag_imports_no_trainer_module():
    script = ("import sys\n"
              "from dcgan_common.config import preset\n"
              "from pipeline.pipeline import create_pipeline\n"
              "create_pipeline(preset('default'))\n"
              "print(sorted(m for m in sys.modules if m == 'trainer' or m.startswith('trainer.')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
