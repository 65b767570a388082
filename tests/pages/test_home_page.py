"""The home page renders, says where models run, and lists the loaded model."""

from __future__ import annotations

import re

import pytest
import torch

from attnviz.device import DEVICE_ENV, device_label, pick_device
from tests.pages.apptest_helpers import assert_clean, start

pytestmark = pytest.mark.bundled  # the page loads the bundled model to fill its table


@pytest.fixture(params=["picked", "forced cpu"])
def device(request, monkeypatch) -> torch.device:
    """Where the page must say models run: attnviz's own choice on this machine (CUDA on a GPU
    machine, so the expectation is not "cpu" everywhere), or the CPU forced with ATTNVIZ_DEVICE."""
    if request.param == "forced cpu":
        monkeypatch.setenv(DEVICE_ENV, "cpu")
    else:
        monkeypatch.delenv(DEVICE_ENV, raising=False)
    return pick_device()


def test_home_page_renders_and_names_the_device(device):
    at = start()
    assert_clean(at)
    assert [t.value for t in at.title] == ["attnviz"]
    text = "\n".join(m.value for m in at.markdown)
    shown = re.sub(r"\\(.)", r"\1", text)  # Markdown's backslash escapes undone: "GPU \(NVIDIA H200\)"
    assert f"**{device_label(device)}**" in shown
    assert f"`{device}`" in text
    assert "ATTNVIZ_DEVICE" in text


def test_home_page_lists_the_bundled_model(device):
    at = start()
    assert_clean(at)
    table = at.dataframe[0].value
    assert table["model"].tolist() == ["all-MiniLM-L6-v2", "shapes-cnn-attention"]
    assert table["kind"].tolist() == ["text", "image"]
    assert table.iloc[1]["status"] == f"loaded, runs on {device} (8x8 grid + class token)"
    assert (table.iloc[1]["layers"], table.iloc[1]["heads"]) == (2, 4)
    row = table.iloc[0]
    assert (row["layers"], row["heads"], row["max tokens"]) == (6, 12, 512)
    assert row["status"] == f"loaded, runs on {device}"
    assert bool(row["bundled"])


def test_home_page_links_to_every_page():
    at = start()
    links = at.get("page_link")
    pages = ["text", "image", "train_images", "worked_example", "head_stats", "next_tokens"]
    assert [link.proto.page for link in links] == pages
    assert links[0].proto.label.startswith("Text attention")
