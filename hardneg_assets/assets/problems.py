"""The `problems` table: GSM8K, MATH and MATH-500 from the bundled `data/` folder."""

import dagster as dg
import pandas as pd

from hardneg.data import BENCHMARK_FILES, load_problems
from hardneg_assets.deferred import asset
from hardneg_assets.metadata import row_count, table_metadata
from hardneg_assets.versions import rows_version
from resources import WarehouseResource


@asset(
    group_name="data",
    metadata=table_metadata("problems"),
    kinds={"duckdb"},
    code_version="1",
    description="Every bundled problem (GSM8K train/test, MATH test, MATH-500) in the `problems` table; bad lines go to `quarantine`.",
)
def problems(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    counts, rejected_total = {}, 0
    for benchmark, split in BENCHMARK_FILES:
        rows, rejected = load_problems(benchmark, split)
        wh.replace_partition("problems", rows, source=benchmark, split=split)
        wh.replace_partition("quarantine", rejected, source=f"{benchmark}/{split}")
        counts[f"{benchmark}/{split}"] = len(rows)
        rejected_total += len(rejected)
        context.log.info(f"{benchmark}/{split}: {len(rows)} problems, {len(rejected)} quarantined")
    table = pd.DataFrame({"set": list(counts), "problems": list(counts.values())})
    return dg.MaterializeResult(
        data_version=rows_version(wh, "problems", "source NOT LIKE 'external:%' AND source NOT LIKE 'inject:%'"),  # external pools add their own
        metadata={
            "rows": dg.MetadataValue.int(sum(counts.values())),
            **row_count(wh.count("problems")),
            "quarantined": dg.MetadataValue.int(rejected_total),
            "by_set": dg.MetadataValue.md(table.to_markdown(index=False)),
        }
    )
