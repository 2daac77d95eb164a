"""The DuckDB warehouse as a Dagster resource (one file; path configurable)."""

from __future__ import annotations

import dagster as dg

from hardneg.paths import warehouse_path
from hardneg.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """One DuckDB file holding every SPEC §6 table."""

    path: str = ""
    """DuckDB file; empty means `$HARDNEG_HOME/warehouse.duckdb`."""

    def get(self) -> Warehouse:
        return Warehouse(self.path or warehouse_path())
