"""The package as users install it: pyproject.toml, console scripts, wheel.

Reads pyproject.toml (the one declaration) and checks it against the tree:
every console script resolves to a callable `run`, every top-level binary
has one, the wheel ships every package with its py.typed marker and the
openSMILE configs, and setup.py declares nothing of its own.
"""

import ast
import glob
import importlib
import importlib.util
import os
import tomllib

import pytest
import setuptools

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

with open(os.path.join(ROOT, "pyproject.toml"), "rb") as _file:
    PYPROJECT = tomllib.load(_file)
SCRIPTS = PYPROJECT["project"]["scripts"]

# The packages the wheel must carry (tasks/ and apps/ arrive with issue 13).
REQUIRED_PACKAGES = ("common", "models", "preprocessing", "tasks", "apps")
# Top-level folders with an __init__.py that are not shipped on purpose.
NOT_SHIPPED = {"tests"}
# Binaries run as modules rather than as top-level files.
MODULE_BINARIES = {"mse-build-arrays": "build_arrays"}


def _is_package(module):
    """True when `module` is a regular package in the tree (not a namespace
    package that an unrelated folder of the same name would give)."""
    return os.path.isfile(os.path.join(ROOT, module, "__init__.py"))


def _top_level_binaries():
    """Stems of the *.py files at the repository root run as programs."""
    stems = []
    for path in sorted(glob.glob(os.path.join(ROOT, "*.py"))):
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
        for node in tree.body:
            if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                    and isinstance(node.test.left, ast.Name)
                    and node.test.left.id == "__name__"):
                stems.append(os.path.splitext(os.path.basename(path))[0])
                break
    return stems


def _found_packages():
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    return setuptools.find_packages(where=ROOT, include=find["include"])


def test_project_metadata_is_declared_once():
    project = PYPROJECT["project"]
    assert project["name"] == "multimodal-speech-emotion"
    for field in ("version", "description", "readme", "requires-python",
                  "license", "authors", "classifiers", "dependencies",
                  "optional-dependencies"):
        assert project.get(field), field
    assert any(dep.startswith("tensorflow") for dep in project["dependencies"])
    assert {"test", "search", "opensmile"} <= set(
        project["optional-dependencies"])
    assert PYPROJECT["build-system"]["build-backend"] == (
        "setuptools.build_meta")
    # setup.py stays (the design card) but must declare nothing itself, so
    # dependencies cannot drift between two files.
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", None) == "setup"]
    assert len(calls) == 1 and not calls[0].args and not calls[0].keywords


def test_license_keeps_the_original_notice():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as file:
        text = file.read()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2019 David Seunghyun Yoon" in text


def test_every_top_level_binary_has_a_console_script():
    binaries = _top_level_binaries()
    # Guards the scan itself: these are the binaries the README documents.
    assert {"train", "evaluate", "predict", "explain", "export"} <= set(
        binaries)
    expected = {f"mse-{stem.replace('_', '-')}": stem for stem in binaries}
    expected.update(MODULE_BINARIES)
    for script, stem in expected.items():
        assert SCRIPTS.get(script) == f"apps.{stem}:run", script
    assert set(SCRIPTS) == set(expected), "a console script with no binary"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_target_is_a_callable_run(script):
    module_name, _, attribute = SCRIPTS[script].partition(":")
    top = module_name.split(".")[0]
    if not _is_package(top):
        pytest.skip(f"package {top}/ not in this tree yet")
    assert importlib.util.find_spec(module_name) is not None, module_name
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute, None)), SCRIPTS[script]


def test_wheel_ships_every_package_with_py_typed():
    found = _found_packages()
    tops = {package.split(".")[0] for package in found}
    for package in REQUIRED_PACKAGES:
        if _is_package(package):
            assert package in tops, package
    missing = [package for package in REQUIRED_PACKAGES
               if not _is_package(package)]
    assert set(missing) <= {"tasks", "apps"}, missing
    # A new top-level package must be shipped (or listed as not shipped).
    in_tree = {name for name in os.listdir(ROOT) if _is_package(name)}
    assert in_tree - NOT_SHIPPED <= tops, in_tree - NOT_SHIPPED - tops
    assert not tops & NOT_SHIPPED
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["*"]
    for package in found:
        marker = os.path.join(ROOT, *package.split("."), "py.typed")
        assert os.path.isfile(marker), marker


def test_opensmile_configs_are_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"][
        "preprocessing"]
    assert "opensmile_configs/*.conf" in patterns
    configs = glob.glob(os.path.join(ROOT, "preprocessing",
                                     "opensmile_configs", "*.conf"))
    assert len(configs) >= 2, configs
