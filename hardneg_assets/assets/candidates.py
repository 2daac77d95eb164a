"""`candidate_pool`: K sampled chain-of-thought solutions per training problem (SPEC §2.3)."""

import time

import dagster as dg

from hardneg.candidates import ingest_external_pool, sample_candidates
from hardneg.data import assert_trainable, load_problems
from hardneg.generation import build_backend
from hardneg.policy import load_merged_policy
from hardneg_assets.deferred import asset
from hardneg_assets.metadata import generation_progress, md_table, row_count, table_metadata
from hardneg_assets.partitions import FAMILY_SEED, FROM_FAMILY, family_seed, stage_version
from hardneg_assets.policies import family_policy
from hardneg_assets.versions import rows_version
from resources import ArtifactStore, ComputeResource, ProfileResource, WarehouseResource


def register_external_problems(wh, rows, source: str) -> None:
    """External pools bring their own problems: store the ones `problems` lacks (as train split)."""
    tag = f"external:{source}"
    bundled = set(wh.query("SELECT problem_id FROM problems WHERE source <> ?", [tag])["problem_id"])
    own = rows[~rows["problem_id"].isin(bundled)].drop_duplicates("problem_id")
    frame = own[["problem_id", "question", "reference_solution", "reference_answer"]].assign(source=tag, split="train")
    wh.replace_partition("problems", frame, source=tag, split="train")


@asset(
    partitions_def=FAMILY_SEED,
    deps=[dg.AssetDep("sft_adapter", partition_mapping=FROM_FAMILY)],
    metadata=table_metadata("candidates"),
    group_name="candidates",
    kinds={"pytorch", "duckdb"},
    pool="gpu",
    code_version=stage_version("1", "problems", "pool", "generation"),
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
    problems, _ = load_problems(prof.problems.pool_benchmark, "train")
    start = prof.problems.pool_offset
    problems = problems.iloc[start : start + cfg.num_problems if cfg.num_problems is not None else None]
    assert_trainable(problems)

    base_path, adapters = family_policy(prof, family, artifacts)
    device = compute.resolved_device()
    model, tokenizer = load_merged_policy(base_path, adapters, device)
    started = time.time()
    if prof.problems.external_pool:
        rows, rejected = ingest_external_pool(
            prof.problems.external_pool, model, tokenizer, family, seed, problems=problems,
            batch_size=cfg.score_batch_size, limit=cfg.num_problems and cfg.num_problems * cfg.k,
        )
        register_external_problems(wh, rows, prof.problems.external_pool)
        wh.replace_partition("quarantine", rejected, source=prof.problems.external_pool)
    else:
        backend = build_backend(
            prof.generation, model, tokenizer, device, base_path=base_path, adapters=adapters,
            workdir=artifacts.work_dir("candidate_pool", f"{family}-{seed}"), log=context.log.info,
        )
        context.log.info(f"sampling {cfg.k} × {len(problems)} problems for {family} seed {seed} on {device}")
        rows = sample_candidates(problems, backend, tokenizer, family, seed, cfg, progress=generation_progress(context, "candidates"))
    seconds = time.time() - started
    written = wh.replace_partition("candidates", rows, family=family, seed=seed)
    by_finish = rows.groupby("finish_reason").size().rename("n").reset_index()
    return dg.MaterializeResult(
        data_version=rows_version(wh, "candidates", family=family, seed=seed),
        metadata={
            "candidates": written,
            **row_count(written),
            "problems": len(problems),
            "accuracy": dg.MetadataValue.float(float(rows["correct"].fillna(False).mean()) if len(rows) else 0.0),
            "mean_confidence": dg.MetadataValue.float(float(rows["confidence"].mean(skipna=True) or 0.0)),
            "mean_perplexity": dg.MetadataValue.float(float(rows["perplexity"].mean())),
            "tokens_per_s": dg.MetadataValue.float(float(rows["n_tokens"].sum() / max(seconds, 1e-9))),
            "finish_reasons": md_table(by_finish),
            "policy_adapters": ", ".join(str(a) for a in adapters) or "none (base model)",
        }
    )
