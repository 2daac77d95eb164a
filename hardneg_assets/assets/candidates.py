"""`candidate_pool`: the candidates of a family × seed, from the profile's pool source (SPEC §2.3).

`policy`: K sampled chain-of-thought solutions per training problem. `inject` (offline, labelled)
and `external` (a file or hub pool) are built shard by shard through `hardneg.pool.PoolParts`,
so a killed build resumes at its next shard and memory stays one shard's worth.
"""

import time
from functools import partial

import dagster as dg

from hardneg.candidates import PolicyScorer, iter_external_pool, iter_external_tasks, sample_candidates
from hardneg.configuration import to_dict
from hardneg.data import assert_trainable, load_problems
from hardneg.engines import build_engine, in_order
from hardneg.generation import build_backend
from hardneg.inject import inject_shards
from hardneg.pool import PoolParts, policy_fingerprint, pool_key, register_pool_problems
from hardneg.progress import ProgressReporter
from hardneg.policy import load_merged_policy
from hardneg_assets.deferred import asset
from hardneg_assets.metadata import generation_progress, md_table, row_count, table_metadata
from hardneg_assets.partitions import FAMILY_SEED, FROM_FAMILY, family_seed, stage_version
from hardneg_assets.policies import family_policy
from hardneg_assets.versions import rows_version
from resources import ArtifactStore, ComputeResource, ProfileResource, WarehouseResource


def build_sharded_pool(context, prof, family: str, seed: int, wh, artifacts, compute) -> tuple[int, dict]:
    """The `inject` / `external` sources: shards to Parquet parts (resumable), then one load per table."""
    cfg = prof.pool
    fingerprint = None
    if cfg.source == "external" and cfg.external.scores == "policy":
        base_path, adapters = family_policy(prof, family, artifacts)
        fingerprint = policy_fingerprint(base_path, adapters)
    source_cfg = to_dict(cfg.inject if cfg.source == "inject" else cfg.external)
    parts = PoolParts(
        artifacts.work_dir("candidate_pool", f"{family}-{seed}"),
        pool_key(cfg.source, source_cfg, cfg.shard_size, family, seed, fingerprint, POOL_VERSION),
    )
    start = parts.next_shard()
    if start:
        context.log.info(f"resuming the {cfg.source} pool at shard {start} ({parts.rows('candidates')} rows already built)")
    if cfg.source == "inject":
        shards = inject_shards(cfg.inject, family, seed, shard_size=cfg.shard_size, start_shard=start)
    elif cfg.external.scores == "file":
        shards = iter_external_pool(cfg.external, family, seed, shard_size=cfg.shard_size, start_shard=start,
                                    problems=load_problems(prof.problems.pool_benchmark, "train")[0])
    else:  # re-scored under the policy, shard by shard, on the pool's engine (this step's device, or Ray actors)
        tasks = iter_external_tasks(cfg.external, family, seed, shard_size=cfg.shard_size, start_shard=start,
                                    problems=load_problems(prof.problems.pool_benchmark, "train")[0])
        device = compute.resolved_device() if cfg.engine.engine == "local" else "auto"  # an actor finds its own GPU
        scorer = partial(PolicyScorer, base_path, [str(a) for a in adapters], device, family, seed,
                         cfg.score_batch_size, cfg.confidence_sharpness, cfg.confidence_center)
        context.log.info(f"re-scoring the external pool under {base_path} on {cfg.engine.describe()}")
        shards = in_order(build_engine(cfg.engine).map(scorer, tasks), start)
    report = ProgressReporter(f"{cfg.source} pool", log=context.log.info, unit="rows")
    report.update(done=parts.rows("candidates"))
    for shard in shards:
        rows = shard.candidates
        if cfg.source == "inject":
            tables = {"candidates": rows, "injected_labels": shard.labels, "problems": shard.problems}
        else:
            own = rows[["problem_id", "question", "reference_solution", "reference_answer"]].assign(
                source=f"external:{cfg.external.path}", split="train")
            tables = {"candidates": rows, "quarantine": shard.quarantine, "problems": own}
        parts.write(shard.index, tables)
        report.update(advance=len(rows))
    report.close()

    shards = len(parts.done())
    written = wh.replace_partition_from_files("candidates", parts.files("candidates"), family=family, seed=seed)
    wh.replace_partition_from_files("injected_labels", parts.files("injected_labels"), family=family, seed=seed)
    if cfg.source == "external":
        wh.replace_partition_from_files("quarantine", parts.files("quarantine"), source=cfg.external.path)
    added = register_pool_problems(wh, parts.files("problems"))
    quarantined = parts.rows("quarantine")
    parts.clear()
    return written, {
        "source": cfg.source,
        "scores": "none: confidence and perplexity null (no policy pass)" if cfg.source == "inject" else cfg.external.scores,
        "shards": dg.MetadataValue.int(shards),
        "problems_registered": dg.MetadataValue.int(added),
        "quarantined": dg.MetadataValue.int(quarantined),
    }


# The rows a pool makes: bump when they change (hardneg/inject.py, or the step split it checks its variants
# with). It is the asset's code version, so the pool shows stale and is rebuilt, and part of the shard key,
# so a half-built pool of the old rows is not resumed. 5: sentences end at "cost." and "items." (mv-1.18).
POOL_VERSION = "5"
POOL_STATS_SQL = """
SELECT avg(CAST(correct AS INTEGER)) AS accuracy, count(DISTINCT problem_id) AS problems
FROM candidates WHERE family = ? AND seed = ?
"""


@asset(
    partitions_def=FAMILY_SEED,
    deps=[dg.AssetDep("sft_adapter", partition_mapping=FROM_FAMILY)],
    metadata=table_metadata("candidates"),
    group_name="candidates",
    kinds={"pytorch", "duckdb"},
    pool="gpu",
    code_version=stage_version(POOL_VERSION, "problems", "pool", "generation"),
    description="K sampled solutions per training problem from the family's policy, with confidence and perplexity.",
)
def candidate_pool(
    context: dg.AssetExecutionContext,
    profile: ProfileResource,
    compute: ComputeResource,
    warehouse: WarehouseResource,
    artifacts: ArtifactStore,
) -> dg.MaterializeResult:
    prof = profile.load()
    family, seed = family_seed(context)
    wh = warehouse.get()
    cfg = prof.pool
    started = time.time()
    if cfg.source != "policy":
        written, extra = build_sharded_pool(context, prof, family, seed, wh, artifacts, compute)
        seconds = time.time() - started
        stats = wh.query(POOL_STATS_SQL, [family, seed]).iloc[0]
        return dg.MaterializeResult(
            data_version=rows_version(wh, "candidates", family=family, seed=seed),
            metadata={
                "candidates": written, **row_count(written), "problems": int(stats["problems"]),
                "accuracy": dg.MetadataValue.float(float(stats["accuracy"] or 0.0)),
                "rows_per_s": dg.MetadataValue.float(written / max(seconds, 1e-9)),
                **extra,
            },
        )
    problems, _ = load_problems(prof.problems.pool_benchmark, "train")
    start = prof.problems.pool_offset
    problems = problems.iloc[start : start + cfg.num_problems if cfg.num_problems is not None else None]
    assert_trainable(problems)

    base_path, adapters = family_policy(prof, family, artifacts)
    device = compute.resolved_device()
    model, tokenizer = load_merged_policy(base_path, adapters, device)
    backend = build_backend(
        prof.generation, model, tokenizer, device, base_path=base_path, adapters=adapters,
        workdir=artifacts.work_dir("candidate_pool", f"{family}-{seed}"), log=context.log.info,
    )
    context.log.info(f"sampling {cfg.k} × {len(problems)} problems for {family} seed {seed} on {device}")
    rows = sample_candidates(problems, backend, tokenizer, family, seed, cfg, progress=generation_progress(context, "candidates"))
    seconds = time.time() - started
    written = wh.replace_partition("candidates", rows, family=family, seed=seed)
    wh.replace_partition("injected_labels", [], family=family, seed=seed)
    by_finish = rows.groupby("finish_reason").size().rename("n").reset_index()
    return dg.MaterializeResult(
        data_version=rows_version(wh, "candidates", family=family, seed=seed),
        metadata={
            "candidates": written,
            **row_count(written),
            "problems": len(problems),
            "source": "policy",
            "accuracy": dg.MetadataValue.float(float(rows["correct"].fillna(False).mean()) if len(rows) else 0.0),
            "mean_confidence": dg.MetadataValue.float(float(rows["confidence"].mean(skipna=True) or 0.0)),
            "mean_perplexity": dg.MetadataValue.float(float(rows["perplexity"].mean())),
            "tokens_per_s": dg.MetadataValue.float(float(rows["n_tokens"].sum() / max(seconds, 1e-9))),
            "finish_reasons": md_table(by_finish),
            "policy_adapters": ", ".join(str(a) for a in adapters) or "none (base model)",
        }
    )
