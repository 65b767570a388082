"""The server settings a deployment relies on (.streamlit/config.toml), read the way Streamlit reads them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"


@pytest.fixture(scope="module")
def config() -> dict:
    with CONFIG.open("rb") as f:
        return tomllib.load(f)


def test_usage_statistics_are_off(config):
    assert config["browser"]["gatherUsageStats"] is False


def test_visitors_never_see_tracebacks(config):
    assert config["client"]["showErrorDetails"] == "none"


def test_uploads_are_capped_and_xsrf_protected(config):
    assert 1 <= config["server"]["maxUploadSize"] <= 50
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
