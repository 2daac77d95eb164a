"""The verifier against the inject pool's labels, read from a warehouse after a `scale` / `scale-mini` run.

Why: the `inject` pool source stores each candidate's injected error type and 0-based error step
(`injected_labels`), so a pipeline run at scale is also a labelled validation of the verifier on
every candidate it verified — no separate bench run, and the same numbers the funnel acted on.
"Detected" is `bench/verifier.py`'s per-type rule (imported, so both benches agree); "exact step"
is the share of step-located errors whose `first_error_step` equals the label.

    HARDNEG_HOME=/tmp/hn-scale .venv/bin/python bench/inject_labels.py --partition "smollm2-135m-sft|0"
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from hardneg.paths import warehouse_path
from hardneg.warehouse import open_read_only

ROWS_SQL = """
SELECT l.error_type, l.error_step, l.source, v.first_error_step, v.d_structure, v.d_order, v.d_answer,
       v.wrongness, v.absurdity, v.steps
FROM injected_labels l JOIN verifier_profiles v USING (candidate_id, family, seed)
WHERE l.family = ? AND l.seed = ?
"""


def _bench_verifier():
    spec = importlib.util.spec_from_file_location("bench_verifier", Path(__file__).with_name("verifier.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _profile(row) -> SimpleNamespace:
    steps = [SimpleNamespace(flags=s.get("flags", [])) for s in json.loads(row.steps or "[]")]
    return SimpleNamespace(first_error_step=None if pd.isna(row.first_error_step) else int(row.first_error_step),
                           d_structure=row.d_structure, d_order=row.d_order, d_answer=row.d_answer,
                           wrongness=row.wrongness, steps=steps)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--partition", default="smollm2-135m-sft|0")
    ap.add_argument("--warehouse", default=None, help="default: $HARDNEG_HOME/warehouse.duckdb")
    args = ap.parse_args(argv)
    family, seed = args.partition.split("|")
    # Read-only, so it can run beside a `hardneg run` that is still verifying (it waits for the lock).
    con = open_read_only(args.warehouse or warehouse_path())
    try:
        rows = con.execute(ROWS_SQL, [family, int(seed)]).df()
    finally:
        con.close()
    if rows.empty:
        print("no labelled, verified candidates in this partition", file=sys.stderr)
        return 2
    bench = _bench_verifier()
    print(f"{len(rows)} labelled candidates verified ({args.partition})\n")
    print("| error type | source | n | detected | exact first-error step | false alarm (correct only) |")
    print("|---|---|---|---|---|---|")
    for (etype, source), g in rows.groupby(["error_type", "source"], sort=True):
        profiles = [_profile(r) for r in g.itertuples()]
        if etype == "correct":
            alarms = sum(p.first_error_step is not None for p in profiles)
            print(f"| {etype} | {source} | {len(g)} | | | {alarms / len(g):.2%} ({alarms}) |")
            continue
        detected = sum(bench._detected(p, etype) for p in profiles)
        located = [(p, int(r.error_step)) for p, r in zip(profiles, g.itertuples()) if not pd.isna(r.error_step)]
        exact = sum(p.first_error_step is not None and int(p.first_error_step) == step for p, step in located)
        exact_text = f"{exact / len(located):.3f} ({exact}/{len(located)})" if etype in bench.STEP_TYPES and located else ""
        print(f"| {etype} | {source} | {len(g)} | {detected / len(g):.3f} | {exact_text} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
