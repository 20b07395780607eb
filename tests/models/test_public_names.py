"""Nothing in the repository reaches into a private name of `models/`: what
one module uses of another is public (a `_name` is that module's own)."""

import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _private_uses(path):
    """(line, "models.x._name") for each private name of a `models` module
    that the file at `path` imports or reads as an attribute."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    aliases = {}  # local name -> models module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (
                (node.module or "").split(".")[0] == "models"):
            for alias in node.names:
                if alias.name.startswith("_"):
                    yield node.lineno, f"{node.module}.{alias.name}"
                aliases[alias.asname or alias.name] = (
                    f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "models" and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases):
            yield node.lineno, f"{aliases[node.value.id]}.{node.attr}"


def test_no_private_name_of_models_is_used_across_modules():
    paths = [path for path in glob.glob(os.path.join(ROOT, "**", "*.py"),
                                        recursive=True)
             if not any(part.startswith(".") for part in
                        os.path.relpath(path, ROOT).split(os.sep))]
    assert any(path.endswith(os.path.join("models", "yoon.py"))
               for path in paths)
    found = [f"{os.path.relpath(path, ROOT)}:{line}: {name}"
             for path in paths for line, name in _private_uses(path)]
    assert found == []
