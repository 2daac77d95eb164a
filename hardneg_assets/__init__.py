"""The Dagster layer: software-defined assets over the `hardneg` library.

Thin and declarative: each asset reads its inputs from the DuckDB warehouse or the
artifact store, calls one library function, writes its partition back, and reports
metadata (tables, plots) for the UI. `definitions.py` holds the one `Definitions`.
"""
