"""The import layers, checked by walking every project module's imports (ast,
nothing imported):

    common        imports nothing of the project
    models        common only          preprocessing   common only
    tasks         common, models, preprocessing, and the tasks modules listed
                  before it in `tasks.LAYERS`
    apps          anything above; never imported by a library package

No import circle among the project's modules (function-local imports
included, so that none can hide a circle), and no function-local import in
the packages except optional heavy dependencies.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARIES = ("common", "models", "preprocessing", "tasks")
PACKAGES = LIBRARIES + ("apps",)
# What each library package may import of the project (besides itself).
ALLOWED = {"common": (), "models": ("common",),
           "preprocessing": ("common",),
           "tasks": ("common", "models", "preprocessing")}
# Optional heavy dependencies: imported where they are used, so that the
# rest works without them (or starts faster).
OPTIONAL_HEAVY = {"matplotlib", "optuna", "opensmile", "pocketsphinx",
                  "jiwer", "torch"}
# Function-local imports their modules keep on purpose, each with a comment
# saying why (a slow import only some paths need); a new one anywhere fails.
KEPT_LOCAL = {
    "models/baseline.py": {"sklearn"},
    "models/training.py": {"tqdm"},
    "preprocessing/asr.py": {"tensorflow_hub", "tensorflow"},
    "preprocessing/audio_io.py": {"librosa"},
    "preprocessing/spectrogram.py": {"librosa"},
}


class Import:
    """One import statement's target inside the project."""

    def __init__(self, module, line, local, main_block):
        self.module = module          # "tasks.folds", "train", ...
        self.line = line
        self.local = local            # inside a function
        self.main_block = main_block  # inside `if __name__ == "__main__":`


def project_modules(root):
    """Module name → file path of the packages and the top-level modules."""
    modules = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(root, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules[".".join(parts)] = path
    for name in os.listdir(root):
        if name.endswith(".py") and name != "setup.py":
            modules[name[:-3]] = os.path.join(root, name)
    return modules


def _is_main_block(node):
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def _walk(node, local=False, main_block=False):
    """(node, inside a function, inside a __main__ block) for every node."""
    for child in ast.iter_child_nodes(node):
        child_local = local or isinstance(
            child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        child_main = main_block or _is_main_block(child)
        yield child, local, main_block
        yield from _walk(child, child_local, child_main)


def _resolve(name, modules):
    """The longest project module that `name` (a dotted import) names."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(module, path, modules):
    """(project imports, third-party names imported in functions)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(
        ".")[0]
    found, external_local = [], []
    for node, local, main_block in _walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from tasks import folds` names the module tasks.folds.
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target is None:
                if local:
                    external_local.append((name.split(".")[0], node.lineno))
            elif target != module:
                found.append(Import(target, node.lineno, local, main_block))
    return found, external_local


def _package(module):
    return module.split(".")[0]


def layer_violations(root, layers):
    """Every import that breaks a layer rule, as 'file:line: why'."""
    modules = project_modules(root)
    problems = []
    for module, path in sorted(modules.items()):
        where = os.path.relpath(path, root)
        package = _package(module)
        found, external_local = imports_of(module, path, modules)
        for imported in found:
            target = _package(imported.module)
            at = f"{where}:{imported.line}: imports {imported.module}"
            if imported.local and package in PACKAGES:
                problems.append(f"{at} inside a function (import it at the "
                                "top of the module)")
            if package in LIBRARIES:
                if target == "apps" or target not in PACKAGES:
                    if not (target == "apps" and imported.main_block):
                        problems.append(f"{at}: a library never imports a "
                                        "binary")
                elif target != package and target not in ALLOWED[package]:
                    problems.append(f"{at}: {package}/ may import only "
                                    f"{ALLOWED[package] or 'nothing'}")
                elif package == target == "tasks":
                    low, high = (module.partition(".")[2],
                                 imported.module.partition(".")[2])
                    if not low or not high or low not in layers or (
                            high not in layers) or (
                            layers.index(high) >= layers.index(low)):
                        problems.append(f"{at}: tasks modules import only "
                                        "those before them in tasks.LAYERS")
            elif package == "apps" and target not in PACKAGES:
                problems.append(f"{at}: apps/ never imports a top-level "
                                "script")
        if package in PACKAGES:
            allowed = OPTIONAL_HEAVY | KEPT_LOCAL.get(
                where.replace(os.sep, "/"), set())
            for name, line in external_local:
                if name not in allowed:
                    problems.append(
                        f"{where}:{line}: imports {name} inside a function "
                        "(only optional heavy dependencies may: "
                        f"{sorted(OPTIONAL_HEAVY)})")
    return problems


def import_cycles(root):
    """Circles in the graph of project modules (function-local imports
    included; not those of a `__main__` block, which only runs when the
    module is the program, e.g. `python -m preprocessing.build_arrays`
    handing over to its binary), each as a list of modules."""
    modules = project_modules(root)
    graph = {module: sorted({i.module for i in imports_of(module, path,
                                                          modules)[0]
                             if not i.main_block})
             for module, path in modules.items()}
    cycles, state, stack = [], {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in graph[module]:
            # A package's __init__ is imported with its submodules: not an
            # edge back to them.
            if module.startswith(target + "."):
                continue
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


def _tasks_layers(root):
    with open(os.path.join(root, "tasks", "__init__.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "LAYERS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("tasks/__init__.py defines no LAYERS")


def test_every_tasks_module_has_a_layer():
    layers = _tasks_layers(ROOT)
    present = {name[:-3] for name in os.listdir(os.path.join(ROOT, "tasks"))
               if name.endswith(".py") and name != "__init__.py"}
    assert set(layers) == present
    assert len(set(layers)) == len(layers)


def test_imports_follow_the_layers():
    assert layer_violations(ROOT, _tasks_layers(ROOT)) == []


def test_no_import_circle():
    assert import_cycles(ROOT) == []


@pytest.mark.parametrize("package,forbidden", [("models", "preprocessing"),
                                               ("preprocessing", "models")])
def test_packages_do_not_import_each_other(package, forbidden):
    modules = project_modules(ROOT)
    offending = [f"{module}:{i.line}" for module, path in modules.items()
                 if _package(module) == package
                 for i in imports_of(module, path, modules)[0]
                 if _package(i.module) == forbidden]
    assert offending == []


def _tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def test_the_checks_find_a_circle_and_a_climb(tmp_path):
    """The checks themselves, on a synthetic project: a circle through a
    function-local import, a lower tasks module importing a higher one, a
    library importing a binary, and a function-local import."""
    root = _tree(tmp_path, {
        "common/__init__.py": "",
        "models/__init__.py": "",
        "models/a.py": "from common import x\n",
        "common/x.py": "",
        "tasks/__init__.py": "LAYERS = ('low', 'high')\n",
        "tasks/low.py": "from tasks import high\n",
        "tasks/high.py": ("import numpy\n\n\ndef f():\n"
                          "    from tasks import low\n    import numpy\n"),
        "preprocessing/__init__.py": "",
        "preprocessing/b.py": "import train\n",
        "apps/__init__.py": "",
        "train.py": "from apps import cli\n",
        "apps/cli.py": "from tasks import high\n",
    })
    assert import_cycles(root) == [["tasks.high", "tasks.low", "tasks.high"]]
    problems = layer_violations(root, ("low", "high"))
    assert any("tasks/low.py:1: imports tasks.high: tasks modules" in p
               for p in problems), problems
    assert any("tasks/high.py:5: imports tasks.low inside a function" in p
               for p in problems), problems
    assert any("tasks/high.py:6: imports numpy inside a function" in p
               for p in problems), problems
    assert any("preprocessing/b.py:1: imports train: a library never "
               "imports a binary" in p for p in problems), problems
    assert len(problems) == 4, problems
    # Without the circle and the climb, the synthetic project is clean.
    _tree(tmp_path, {"tasks/low.py": "import numpy\n",
                     "tasks/high.py": "from tasks import low\n",
                     "preprocessing/b.py": "from common import x\n"})
    assert import_cycles(root) == []
    assert layer_violations(root, ("low", "high")) == []
