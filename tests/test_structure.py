"""The package dependency graph of README "Architecture", checked against the source."""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("dcgan_common", "trainer", "components", "serving", "pipeline", "dcgan_kfp")
# What each package may import of the project (README, "Architecture").
ALLOWED = {
    "dcgan_common": set(),
    "trainer": {"dcgan_common"},
    "components": {"dcgan_common"},
    "serving": {"dcgan_common"},
    "pipeline": {"components", "dcgan_common"},
    "dcgan_kfp": {"pipeline", "components", "serving", "dcgan_common"},
}


def project_imports(package: str) -> dict[str, set[str]]:
    """module file -> the other project packages it imports (anywhere in the file)."""
    found = {}
    for name in sorted(os.listdir(os.path.join(ROOT, package))):
        if not name.endswith(".py"):
            continue
        path = os.path.join(ROOT, package, name)
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        found[f"{package}/{name}"] = (imported & set(PACKAGES)) - {package}
    return found


def test_every_package_imports_only_what_the_architecture_allows():
    for package, allowed in ALLOWED.items():
        for module, imported in project_imports(package).items():
            assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"


def test_building_the_dag_imports_no_trainer_module():
    script = ("import sys\n"
              "from dcgan_common.config import preset\n"
              "from pipeline.pipeline import create_pipeline\n"
              "create_pipeline(preset('default'))\n"
              "print(sorted(m for m in sys.modules if m == 'trainer' or m.startswith('trainer.')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
