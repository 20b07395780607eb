"""Kept for the design card and for tools that call `setup.py` directly.

Everything (metadata, dependencies, packages, package data, console scripts)
is declared once, in pyproject.toml; setuptools reads it from there.
"""

import setuptools

setuptools.setup()
