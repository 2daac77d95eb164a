"""The warehouse: partition replacement is atomic and idempotent; bad rows change nothing."""

import pandas as pd
import pytest

from hardneg.warehouse import Warehouse, WarehouseError


def _candidates(family, seed, n, text="t"):
    return pd.DataFrame(
        {
            "candidate_id": [f"{family}:{seed}:{i}" for i in range(n)],
            "problem_id": [f"p{i}" for i in range(n)],
            "family": family,
            "seed": seed,
            "text": text,
        }
    )


def test_replace_partition_is_idempotent_and_isolated(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.replace_partition("candidates", _candidates("a", 0, 5), family="a", seed=0)
    wh.replace_partition("candidates", _candidates("a", 1, 3), family="a", seed=1)
    wh.replace_partition("candidates", _candidates("a", 0, 5, text="again"), family="a", seed=0)
    assert wh.count("candidates", family="a", seed=0) == 5
    assert wh.count("candidates", family="a", seed=1) == 3
    assert set(wh.query("SELECT text FROM candidates WHERE seed = 0")["text"]) == {"again"}


def test_row_outside_partition_is_refused_and_nothing_is_lost(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.replace_partition("candidates", _candidates("a", 0, 4), family="a", seed=0)
    bad = _candidates("a", 0, 4)
    bad.loc[2, "seed"] = 7
    with pytest.raises(WarehouseError, match="row 2 has seed=7"):
        wh.replace_partition("candidates", bad, family="a", seed=0)
    assert wh.count("candidates", family="a", seed=0) == 4


def test_failed_insert_rolls_back_the_delete(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.replace_partition("candidates", _candidates("a", 0, 4), family="a", seed=0)
    bad = _candidates("a", 0, 2)
    bad["confidence"] = ["high", "low"]  # not a DOUBLE: the insert fails after the delete ran
    with pytest.raises(Exception):
        wh.replace_partition("candidates", bad, family="a", seed=0)
    assert wh.count("candidates", family="a", seed=0) == 4


def test_json_columns_round_trip(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    row = {"candidate_id": "c", "family": "a", "seed": 0, "steps": [{"text": "x", "flags": ["f"]}], "channels": ["fast"]}
    wh.replace_partition("verifier_profiles", [row], family="a", seed=0)
    got = wh.query("SELECT steps::VARCHAR AS s FROM verifier_profiles")["s"][0]
    assert '"flags"' in got and '"f"' in got
