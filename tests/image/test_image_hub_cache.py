"""An image model loads by hub id from a local Hugging Face cache, the way a machine without internet
(HF_HUB_OFFLINE=1) meets a model downloaded earlier: ``HF_HOME/hub/models--org--name/snapshots/<rev>/``
with ``refs/main`` naming the revision and each file a link to its blob, as huggingface_hub lays it out.

The hub cannot be reached from here, so the cache is built by hand from a tiny random Swin and ViT
saved with save_pretrained. Each load runs in a fresh Python with HF_HOME pointing at the cache:
huggingface_hub reads HF_HOME when it is imported, so this process's own setting would decide otherwise.
The name goes through attnviz.model_source's resolve path (a hub id, offline: the cache only).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import SwinConfig, SwinForImageClassification, ViTConfig, ViTForImageClassification

ROOT = Path(__file__).resolve().parents[2]
LABELS = dict(num_labels=3, id2label={0: "cat", 1: "dog", 2: "fox"}, label2id={"cat": 0, "dog": 1, "fox": 2})
REVISION = "0123456789abcdef0123456789abcdef01234567"

PROBE = """
import json, sys
from attnviz.model_source import HUB, resolve_model_source
from attnviz.image.loading import BUNDLED_IMAGE_MODEL, load_image_model
from attnviz.image.extraction import image_attention
from PIL import Image

name = sys.argv[1]
source = resolve_model_source(name, BUNDLED_IMAGE_MODEL, what="image model")
model = load_image_model(name, device="cpu")
ia = image_attention(model, Image.new("RGB", (40, 30), (200, 40, 90)))
print(json.dumps({
    "kind": source.kind == HUB, "offline": source.offline, "hub_kwargs": source.hub_kwargs,
    "family": model.family.kind, "classes": list(model.classes), "grid": list(model.grid),
    "supported": list(model.family.supported_maps), "blocks": len(ia.windows), "layers": ia.map_layers,
    "best": ia.predictions[0][0],
}))
"""


def _cache(home: Path, repo: str, folder: Path) -> None:
    """``folder``'s files in huggingface_hub's cache layout under ``home``: blobs named by their SHA-256,
    snapshot entries that link to them, and refs/main."""
    org, name = repo.split("/")
    base = home / "hub" / f"models--{org}--{name}"
    snapshot = base / "snapshots" / REVISION
    (base / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        data = file.read_bytes()
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(REVISION)


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf-home")
    torch.manual_seed(0)
    models = {
        "tiny-org/tiny-swin": SwinForImageClassification(
            SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=4,
                       **LABELS)
        ),
        "tiny-org/tiny-vit": ViTForImageClassification(
            ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, **LABELS)
        ),
    }  # fmt: skip
    for repo, model in models.items():
        folder = tmp_path_factory.mktemp(repo.split("/")[1])
        model.save_pretrained(str(folder))
        _cache(home, repo, folder)
    return home


def _load_in_fresh_python(home: Path, name: str, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "ATTNVIZ_"))}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, name], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("repo", "family", "grid", "layers"),
    [("tiny-org/tiny-swin", "swin", [8, 8], 4), ("tiny-org/tiny-vit", "vit", [4, 4], 2)],
)
def test_an_image_model_loads_by_hub_id_from_the_local_cache_offline(hf_home, tmp_path, repo, family, grid, layers):
    got = _load_in_fresh_python(hf_home, repo, tmp_path)  # an empty folder: "tiny-org" is no path here
    assert got["kind"] and got["offline"] and got["hub_kwargs"] == {"local_files_only": True}
    assert got["family"] == family and got["grid"] == grid and got["layers"] == layers
    assert got["classes"] == ["cat", "dog", "fox"] and got["best"] in got["classes"]
    assert got["blocks"] == (4 if family == "swin" else 0)


def test_a_hub_id_missing_from_the_cache_says_the_hub_cannot_be_reached(hf_home, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "ATTNVIZ_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    probe = (
        "from attnviz.errors import ModelLoadError\n"
        "from attnviz.image.loading import load_image_model\n"
        "try:\n    load_image_model('tiny-org/not-cached', device='cpu')\n"
        "except ModelLoadError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "hub cannot be reached" in done.stdout and "HF_HUB_OFFLINE" in done.stdout
