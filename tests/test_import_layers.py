"""The package layering rule: `models/` and `preprocessing/` never import
each other (glue modules at the top level join them)."""

import ast
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _imported_packages(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield (node.module or "").split(".")[0], node.lineno


@pytest.mark.parametrize("package,forbidden", [("models", "preprocessing"),
                                               ("preprocessing", "models")])
def test_packages_do_not_import_each_other(package, forbidden):
    files = glob.glob(os.path.join(ROOT, package, "**", "*.py"),
                      recursive=True)
    assert files
    offending = [f"{os.path.relpath(path, ROOT)}:{line}"
                 for path in files
                 for name, line in _imported_packages(path)
                 if name == forbidden]
    assert offending == [], (f"{package}/ imports {forbidden}/ at "
                             f"{offending}")
