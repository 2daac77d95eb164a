"""The Dagster layer: software-defined assets over the `hardneg` library.

Thin and declarative: each asset reads its inputs from the DuckDB warehouse or the
artifact store, calls one library function, writes its partition back, and reports
metadata (tables, plots, catalog entries) for the UI. Assets are declared once
(`deferred.py`) and bound to one profile by `definitions.build_definitions`, which is
also what the code location serves. `cli.py` is the installed `hardneg` command
(`run` lives here because it needs Dagster); importing this package imports nothing.
"""
