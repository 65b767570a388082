"""The layers in docs/architecture.md, checked on the imports themselves (parsed, not run)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers import imported_modules as imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "attnviz"
SHARED_TOP = {"errors", "device", "model_source", "weight_files", "model_budget", "results", "examples"}


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_only_the_ui_imports_streamlit():
    for path in modules(PACKAGE):
        if "ui" in path.relative_to(PACKAGE).parts:
            continue
        bad = {m for m in imports(path) if m.split(".")[0] == "streamlit" or m.startswith("attnviz.ui")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_maths_uses_arrays_only():
    """No model code in maths: the standard library, numpy, pandas and other maths modules."""
    allowed_roots = {"numpy", "pandas", "__future__"}
    for path in modules(PACKAGE / "maths"):
        for module in imports(path):
            root = module.split(".")[0]
            if root in sys.stdlib_module_names or root in allowed_roots:
                continue
            assert module.startswith(("attnviz.maths", "attnviz.errors")) or module == "attnviz", (
                f"{path.relative_to(ROOT)} imports {module}"
            )


def test_the_shared_top_imports_no_wing():
    for name in SHARED_TOP:
        path = PACKAGE / f"{name}.py"
        assert path.exists(), path
        wings = {m for m in imports(path) if m.startswith("attnviz.") and m.split(".")[1] not in SHARED_TOP}
        assert not wings, f"{path.relative_to(ROOT)} imports {sorted(wings)}"


def test_text_and_image_wings_do_not_import_each_other():
    for wing, other in (("text", "image"), ("image", "text")):
        for path in modules(PACKAGE / wing):
            bad = {m for m in imports(path) if m.startswith(f"attnviz.{other}")}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_no_test_file_imports_another_test_file():
    for path in modules(ROOT / "tests"):
        bad = {m for m in imports(path) if m.startswith("tests.") and m.split(".")[-1].startswith("test_")}
        bad |= {m for m in imports(path) if m.split(".")[0].startswith("test_")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
