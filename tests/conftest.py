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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama with a ChatML tokenizer (see tests/tiny_model.py), built once."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture()
def hardneg_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty HARDNEG_HOME for one test."""
    home = tmp_path / "hardneg_home"
    monkeypatch.setenv("HARDNEG_HOME", str(home))
    return home
