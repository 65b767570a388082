"""The server settings a deployment relies on (.streamlit/config.toml), read the way Streamlit reads them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from attnviz.image.decoding import MAX_BYTES

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"


@pytest.fixture(scope="module")
def config() -> dict:
    with CONFIG.open("rb") as f:
        return tomllib.load(f)


def test_usage_statistics_are_off(config):
    assert config["browser"]["gatherUsageStats"] is False


def test_visitors_never_see_tracebacks(config):
    assert config["client"]["showErrorDetails"] == "none"


def test_uploads_are_capped_as_the_readme_says_and_xsrf_protected(config):
    readme = (CONFIG.parents[1] / "README.md").read_text(encoding="utf-8")
    stated = int(re.search(r"Uploads are capped at (\d+) MB", readme).group(1))
    cap = config["server"]["maxUploadSize"]
    assert cap == stated, f"config.toml caps uploads at {cap} MB, the README says {stated} MB"
    assert cap * 2**20 <= MAX_BYTES  # open_image must accept whatever the server lets through
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["enableCORS"] is True


def test_every_option_is_one_streamlit_knows():
    """A misspelt option is silently ignored by Streamlit; this catches it."""
    from streamlit import config as st_config

    with CONFIG.open("rb") as f:
        sections = tomllib.load(f)
    known = set(st_config._config_options_template)
    for section, options in sections.items():
        for option in options:
            assert f"{section}.{option}" in known, f"{section}.{option} is not a Streamlit option"


def test_source_files_are_not_watched(config):
    """Streamlit's file watchers polled every module of the app while visitors clicked; a deployment
    does not edit its code, so they are off (a developer turns them on from the command line)."""
    assert config["server"]["fileWatcherType"] == "none"
    assert config["server"]["runOnSave"] is False
