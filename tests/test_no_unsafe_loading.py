"""No code path can load a pickle or run code from a model: a static scan of every Python file.

The scan parses each file with ``ast`` (comments and strings never match) and fails on:

- ``trust_remote_code=`` anything but ``False``/``None`` (also inside a ``**{...}`` literal);
- an ``Auto*`` class's ``from_pretrained``/``from_config``, a ``from_pretrained`` on anything
  but a concrete transformers class (``_model_class(config).from_pretrained``), or
  ``transformers.pipeline`` without ``trust_remote_code=False``: left out (or ``None``),
  transformers asks "Do you wish to run the custom code? [y/N]" on the terminal for a model
  with ``auto_map``, and a "y" runs the model's Python file;
- ``pickle.load``, ``pickle.loads``, ``pickle.Unpickler`` (also ``_pickle``/``cPickle``);
- ``torch.load`` without ``weights_only=True``;
- ``np.load``/``numpy.load`` with ``allow_pickle=`` anything but ``False``;
- ``pandas.read_pickle`` (any ``.read_pickle(...)``), ``joblib.load``;
- importing ``dill`` or ``cloudpickle``;
- ``.from_pretrained(...)`` of a model (anything but a tokenizer, config, processor or feature
  extractor) without ``use_safetensors=True``;
- ``eval(...)``/``exec(...)`` (the builtins; ``model.eval()`` is a method and is fine).

Import aliases are followed (``import torch as t; t.load(...)``, ``from pickle import loads``).
A self-test runs the scanner on a source that has each forbidden pattern, so it cannot pass
everything silently.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("attnviz", "pages", "scripts", "benchmarks", "tests", "app.py")

#: Exceptions, each with its reason. Keyed by (path relative to the root, rule). A stale entry fails.
ALLOWED = {
    ("benchmarks/textbench/server_time.py", "pickle.loads"): (
        "times st.cache_data's cost: unpickles bytes the benchmark pickled itself one line earlier"
    ),
}

#: ``X.from_pretrained`` is fine when X's name contains one of these (no model weights are loaded).
NO_WEIGHTS = ("Tokenizer", "Config", "Processor", "FeatureExtractor")
#: Calls that can import a model's own code unless given ``trust_remote_code=False``.
REMOTE_CODE_METHODS = ("from_pretrained", "from_config")
PIPELINES = ("transformers.pipeline", "transformers.pipelines.pipeline")
PICKLE_MODULES = ("pickle", "_pickle", "cPickle")


def _is_const(node: ast.AST | None, *values) -> bool:
    return isinstance(node, ast.Constant) and any(node.value is v for v in values)


class Scanner(ast.NodeVisitor):
    """Collects (line, rule, message) for one module."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> dotted name it stands for
        self.found: list[tuple[int, str, str]] = []

    def flag(self, node: ast.AST, rule: str, message: str) -> None:
        self.found.append((node.lineno, rule, message))

    # ---- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top in ("dill", "cloudpickle"):
                self.flag(node, f"import {top}", f"imports {top}, which unpickles arbitrary objects")
            self.aliases[alias.asname or top] = alias.name if alias.asname else top
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        top = module.split(".")[0]
        if top in ("dill", "cloudpickle"):
            self.flag(node, f"import {top}", f"imports from {top}, which unpickles arbitrary objects")
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name
        self.generic_visit(node)

    # ---- calls
    def qualname(self, node: ast.AST) -> str | None:
        """``np.load`` -> ``numpy.load`` through the import aliases; None for calls on expressions."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    @staticmethod
    def keyword(node: ast.Call, name: str) -> tuple[bool, ast.AST | None]:
        """(given, value) of keyword ``name``, looking into ``**{...}`` literals too."""
        for kw in node.keywords:
            if kw.arg == name:
                return True, kw.value
            if kw.arg is None and isinstance(kw.value, ast.Dict):
                for key, value in zip(kw.value.keys, kw.value.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == name:
                        return True, value
        return False, None

    def may_run_remote_code(self, func: ast.AST, name: str | None) -> bool:
        """An Auto class's loader, a loader of a class the scan cannot name, or a pipeline.

        A concrete transformers class (``BertTokenizer.from_pretrained``) never imports a model's code.
        """
        if name in PIPELINES:
            return True
        if not (isinstance(func, ast.Attribute) and func.attr in REMOTE_CODE_METHODS):
            return False
        owner = self.qualname(func.value)
        if owner is None:  # a call or a subscript: which class is unknown
            return True
        concrete = owner.startswith("transformers.") and not owner.split(".")[-1].startswith("Auto")
        return not concrete

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = self.qualname(func)
        given, value = self.keyword(node, "trust_remote_code")
        if given and not _is_const(value, False, None):
            self.flag(node, "trust_remote_code", "trust_remote_code is not False: it runs a model's own Python code")
        if self.may_run_remote_code(func, name) and (not given or _is_const(value, None)):
            self.flag(
                node,
                "trust_remote_code=False missing",
                f"{name or 'a call'} without trust_remote_code=False: transformers would ask on the terminal whether "
                "to run a model's own code",
            )
        if name in ("eval", "exec", "builtins.eval", "builtins.exec"):
            self.flag(node, name.split(".")[-1], f"calls {name}(): never evaluate strings as code")
        if name and any(name == f"{m}.{f}" for m in PICKLE_MODULES for f in ("load", "loads", "Unpickler")):
            self.flag(node, "pickle." + name.split(".")[-1], f"{name} unpickles data, which can run code")
        if name == "torch.load":
            given, value = self.keyword(node, "weights_only")
            if not _is_const(value, True):
                self.flag(node, "torch.load", "torch.load without weights_only=True unpickles arbitrary objects")
        if name == "numpy.load":
            given, value = self.keyword(node, "allow_pickle")
            if given and not _is_const(value, False, None):
                self.flag(node, "numpy.load", "numpy.load with allow_pickle unpickles object arrays")
        if isinstance(func, ast.Attribute) and func.attr == "read_pickle":
            self.flag(node, "read_pickle", "read_pickle unpickles data, which can run code")
        if name == "joblib.load":
            self.flag(node, "joblib.load", "joblib.load unpickles data, which can run code")
        if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
            owner = self.qualname(func.value) or ""
            if not any(word in owner.split(".")[-1] for word in NO_WEIGHTS):
                given, value = self.keyword(node, "use_safetensors")
                if not _is_const(value, True):
                    self.flag(
                        node,
                        "from_pretrained",
                        f"{owner or '(a model)'}.from_pretrained loads weights without use_safetensors=True, "
                        "so a pickled pytorch_model.bin would be opened",
                    )
        self.generic_visit(node)


def scan_source(source: str, filename: str = "<string>") -> list[tuple[int, str, str]]:
    scanner = Scanner()
    scanner.visit(ast.parse(source, filename=filename))
    return sorted(scanner.found)


def python_files() -> list[Path]:
    files = []
    for entry in SCANNED:
        path = ROOT / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in path.rglob("*.py") if ".venv" not in p.parts and "__pycache__" not in p.parts)
    return sorted(files)


def test_no_unsafe_loading_anywhere():
    files = python_files()
    assert len(files) > 50 and ROOT / "app.py" in files and ROOT / "attnviz" / "text" / "loading.py" in files
    problems, used = [], set()
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for line, rule, message in scan_source(path.read_text(encoding="utf-8"), rel):
            if (rel, rule) in ALLOWED:
                used.add((rel, rule))
                continue
            problems.append(f"{rel}:{line}: {message}")
    assert not problems, "unsafe loading found:\n" + "\n".join(problems)
    assert used == set(ALLOWED), f"stale ALLOWED entries: {set(ALLOWED) - used}"


# ------------------------------------------------------------------- the scanner's self-test

FORBIDDEN = """
import pickle
import numpy as np
import torch as t
import pandas as pd
import joblib
import dill
from cloudpickle import loads as cl
from pickle import Unpickler
from transformers import AutoModel, AutoModelForImageClassification, AutoConfig, AutoTokenizer, AutoImageProcessor
import builtins
pickle.load(f)                                                   # 12
pickle.loads(b)                                                  # 13
Unpickler(f).load()                                              # 14
t.load("model.pt")                                               # 15
t.load("model.pt", weights_only=False)                           # 16
np.load("a.npy", allow_pickle=True)                              # 17
pd.read_pickle("frame.pkl")                                      # 18
joblib.load("model.joblib")                                      # 19
AutoModel.from_pretrained("x", trust_remote_code=True)           # 20
AutoModel.from_pretrained("x", use_safetensors=True, trust_remote_code=1)  # 21
AutoModelForImageClassification.from_pretrained("x")             # 22
make_class(config).from_pretrained("x", use_safetensors=False)   # 23
eval("1 + 1")                                                    # 24
exec("x = 1")                                                    # 25
builtins.eval("2")                                               # 26
AutoModel.from_pretrained("x", use_safetensors=True, **{"trust_remote_code": flag})  # 27
AutoConfig.from_pretrained("x")                                  # 28
AutoTokenizer.from_pretrained("x", trust_remote_code=None)       # 29
AutoImageProcessor.from_pretrained("x", **extra)                 # 30
AutoModel.from_config(config)                                    # 31
transformers.pipeline("fill-mask", model="x")                    # 32
model_class.from_pretrained("x", use_safetensors=True)           # 33
"""

EXPECTED = {
    (7, "import dill"),
    (8, "import cloudpickle"),
    (12, "pickle.load"),
    (13, "pickle.loads"),
    (14, "pickle.Unpickler"),
    (15, "torch.load"),
    (16, "torch.load"),
    (17, "numpy.load"),
    (18, "read_pickle"),
    (19, "joblib.load"),
    (20, "trust_remote_code"),
    (20, "from_pretrained"),
    (21, "trust_remote_code"),
    (22, "from_pretrained"),
    (22, "trust_remote_code=False missing"),
    (23, "from_pretrained"),
    (23, "trust_remote_code=False missing"),
    (24, "eval"),
    (25, "exec"),
    (26, "eval"),
    (27, "trust_remote_code"),
    (28, "trust_remote_code=False missing"),
    (29, "trust_remote_code=False missing"),
    (30, "trust_remote_code=False missing"),
    (31, "trust_remote_code=False missing"),
    (32, "trust_remote_code=False missing"),
    (33, "trust_remote_code=False missing"),
}

SAFE = """
import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer, AutoImageProcessor, AutoModel, BertTokenizerFast
import transformers
AutoConfig.from_pretrained("x", trust_remote_code=False)
AutoTokenizer.from_pretrained("x", trust_remote_code=False)
BertTokenizerFast.from_pretrained("x")
transformers.BertModel.from_pretrained("x", use_safetensors=True)
AutoImageProcessor.from_pretrained("x", trust_remote_code=False, **extra)
AutoModel.from_pretrained("x", attn_implementation="eager", use_safetensors=True, trust_remote_code=False)
AutoModel.from_config(config, trust_remote_code=False)
AutoConfig.for_model("bert", hidden_size=32)
transformers.pipeline("fill-mask", model="x", trust_remote_code=False)
make_class(config).from_pretrained("x", use_safetensors=True, **{"trust_remote_code": False})
torch.load("weights.pt", weights_only=True)
np.load("a.npz")
np.load("a.npz", allow_pickle=False)
model.eval()
pickle_note = "pickle.load(f) and eval('x') in a string are not code"
# pickle.loads(b) in a comment is not code
"""


def test_scanner_flags_each_forbidden_pattern():
    found = {(line, rule) for line, rule, _ in scan_source(FORBIDDEN)}
    assert found == EXPECTED, f"missed: {sorted(EXPECTED - found)}, extra: {sorted(found - EXPECTED)}"


def test_scanner_passes_safe_code():
    assert scan_source(SAFE) == []


@pytest.mark.parametrize(
    "line",
    [
        "import pickle as p\np.loads(b)",
        "from torch import load\nload('m.pt')",
        "import numpy\nnumpy.load('a', allow_pickle=flag)",
        "from transformers import BertModel\nBertModel.from_pretrained('x')",
        "AutoModel.from_pretrained('x', use_safetensors=True, trust_remote_code=opts.trust)",
        "from transformers import AutoTokenizer as Tok\nTok.from_pretrained('x')",
        "import transformers as tf\ntf.AutoConfig.from_pretrained('x', trust_remote_code=None)",
        "from transformers import pipeline\npipeline('fill-mask')",
    ],
)
def test_scanner_follows_aliases_and_non_literal_values(line):
    assert scan_source(line), line
