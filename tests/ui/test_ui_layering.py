"""The ui's layering, read from the source with ``ast``: page modules stand alone, caches live in one room.

* A ui page module (``attnviz/ui/*_page.py``) never imports another page module, directly or
  through other ui modules: what two pages share (the sentence, the model pickers, shared
  session keys) lives in a module of its own (sentence, widgets, state).
* Only ``attnviz/ui/cache.py`` uses ``st.cache_data`` / ``st.cache_resource``: one keying rule
  for the whole app (see that module's docstring).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import imported_modules

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "attnviz" / "ui"
CACHE_ROOM = UI / "cache.py"
STREAMLIT_NAMES = {"st", "streamlit"}
CACHE_NAMES = {"cache_data", "cache_resource", "cache", "experimental_memo", "experimental_singleton"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def ui_imports(path: Path) -> set[str]:
    """The attnviz.ui modules that ``path`` imports (``from attnviz.ui import x`` counts as x)."""
    found = imported_modules(path)
    modules = {module_name(p) for p in UI.glob("*.py")}
    return {name for name in found if name in modules}


def test_no_ui_page_module_imports_another():
    graph = {module_name(p): ui_imports(p) for p in UI.glob("*.py")}
    pages = {module_name(p) for p in UI.glob("*_page.py")}
    assert len(pages) >= 5, pages  # home, text, image, worked, stats
    problems = []
    for page in sorted(pages):
        # Every ui module the page reaches, with the chain that reaches it.
        chains, todo = {page: [page]}, [page]
        while todo:
            current = todo.pop()
            for name in graph.get(current, ()):
                if name not in chains:
                    chains[name] = [*chains[current], name]
                    todo.append(name)
        problems += [" -> ".join(chain) for name, chain in chains.items() if name in pages and name != page]
    assert not problems, problems


def cache_calls(path: Path) -> list[str]:
    """Where ``path`` uses a Streamlit cache decorator or function (st.cache_data, from streamlit import ...)."""
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        # st.cache_data, streamlit.cache, ...: a Streamlit cache reached through the module. (A model
        # output's ``.cache``, transformers' KV cache, is not one.)
        if (
            isinstance(node, ast.Attribute)
            and node.attr in CACHE_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in STREAMLIT_NAMES
        ):
            found.append(f"{where}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("streamlit"):
            found += [
                f"{where}:{node.lineno}: import {alias.name}" for alias in node.names if alias.name in CACHE_NAMES
            ]
    return found


def test_only_the_cache_room_caches():
    files = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "attnviz").rglob("*.py"))]
    outside = [hit for path in files if path != CACHE_ROOM for hit in cache_calls(path)]
    assert not outside, outside
    assert cache_calls(CACHE_ROOM)  # the room itself is where they are


def test_the_scans_see_what_they_look_for(tmp_path):
    """The two scans are not vacuous: they find a cache call and a page-to-page import when there is one."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import streamlit as st\nfrom streamlit import cache_data\n\n@st.cache_resource\ndef f(out): return out.cache\n"
    )
    hits = sorted(cache_calls(sample), key=lambda hit: int(hit.split(":")[1]))
    assert [hit.split(": ", 1)[1] for hit in hits] == ["import cache_data", ".cache_resource"]  # not out.cache
    assert "attnviz.ui.cache" in ui_imports(UI / "text_page.py")
    assert "attnviz.ui.sentence" in ui_imports(ROOT / "pages" / "text.py")
