"""Shared fixtures: an isolated HARDNEG_HOME per test session and a tiny real model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HARDNEG_PROFILE"] = "smoke"  # partition keys in the tests are the smoke families


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory):
    """Every test session writes under its own HARDNEG_HOME, never the user's `.hardneg/`.

    Converted models are cached there, so the SmolLM2 conversion happens once per session.
    """
    home = tmp_path_factory.mktemp("session_home")
    previous = os.environ.get("HARDNEG_HOME")
    os.environ["HARDNEG_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    yield home
    if previous is not None:
        os.environ["HARDNEG_HOME"] = previous


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama with a ChatML tokenizer (see tests/tiny_model.py), built once."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture()
def hardneg_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty HARDNEG_HOME (and DAGSTER_HOME inside it) for one test."""
    home = tmp_path / "hardneg_home"
    monkeypatch.setenv("HARDNEG_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    (home / "dagster").mkdir(parents=True)
    return home


@pytest.fixture(scope="session")
def smollm2_dir(session_home) -> Path:
    """The real embedded-default policy, converted from its GGUF package once per session."""
    from hardneg.registry import resolve_model

    return Path(resolve_model("smollm2-135m-instruct"))
