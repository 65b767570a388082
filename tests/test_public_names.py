"""Every public name the README shows resolves: attributes of ``attnviz``, imports, and commands."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

import attnviz

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
CODE = "\n".join(re.findall(r"```python\n(.*?)```", README, flags=re.S))
#: attnviz.a.b.c as written after "import attnviz" (calls, attributes), import lines aside.
EXPRESSIONS = re.sub(r"^(from|import) .*$", "", CODE, flags=re.M)
DOTTED = sorted(set(re.findall(r"\battnviz(?:\.[A-Za-z_]\w*)+", EXPRESSIONS)))
FROM_IMPORTS = re.findall(r"^from (attnviz[\w.]*) import ([\w, ]+)", CODE, flags=re.M)
COMMANDS = sorted(set(re.findall(r"python -m (attnviz[\w.]*)", README)))


def test_the_readme_shows_the_api():
    assert len(DOTTED) > 15 and FROM_IMPORTS and len(COMMANDS) >= 3


@pytest.mark.parametrize("dotted", DOTTED)
def test_dotted_names_resolve(dotted):
    value = attnviz
    for part in dotted.split(".")[1:]:
        value = getattr(value, part)  # attnviz's lazy exports and submodules, as a notebook reaches them
    assert value is not None


@pytest.mark.parametrize(("module", "names"), FROM_IMPORTS)
def test_from_imports_resolve(module, names):
    imported = importlib.import_module(module)
    for name in (n.strip() for n in names.split(",")):
        assert callable(getattr(imported, name)), f"{module}.{name}"


@pytest.mark.parametrize("module", COMMANDS)
def test_commands_exist(module):
    assert importlib.util.find_spec(module) is not None, module
    assert callable(importlib.import_module(module).main), module
