"""`sft_adapter`: QLoRA (CUDA) / LoRA fp32 (CPU) SFT per model family (paper §3.1)."""

import shutil

import dagster as dg

from hardneg.configuration import to_dict
from hardneg.data import load_sft_examples, source_label
from hardneg.paths import artifacts_dir
from hardneg.registry import resolve_model
from hardneg.sft import train_sft
from hardneg_assets.assets.problems import problems
from hardneg_assets.deferred import asset
from hardneg_assets.metadata import image_metadata, log_progress_callback, row_count, table_metadata
from hardneg_assets.partitions import FAMILY, stage_version
from hardneg_assets.policies import sft_dir
from hardneg_assets.versions import adapter_version, text_version
from resources import ArtifactStore, ComputeResource, ProfileResource, WarehouseResource


@asset(
    partitions_def=FAMILY,
    deps=[problems],
    metadata=table_metadata("training_runs"),
    group_name="training",
    kinds={"pytorch", "duckdb"},
    pool="gpu",
    code_version=stage_version("2", "families", "models", "sft"),  # 2: also writes the merged SFT model
    description="LoRA adapter from SFT on MetaMathQA-style data (skipped for families that start from the instruct model).",
)
def sft_adapter(
    context: dg.AssetExecutionContext,
    profile: ProfileResource,
    compute: ComputeResource,
    warehouse: WarehouseResource,
    artifacts: ArtifactStore,
) -> dg.MaterializeResult:
    prof = profile.load()
    family = prof.family(context.partition_key)
    wh = warehouse.get()
    if not family.sft:
        wh.replace_partition("training_runs", [], family=family.name, stage="sft")
        context.log.info(f"family {family.name} starts from {family.base_model} without SFT")
        return dg.MaterializeResult(
            data_version=text_version("no SFT", family.base_model),
            metadata={"skipped": "family has no SFT stage", "base_model": family.base_model},
        )

    base_path = resolve_model(family.base_model, prof.model_catalogue())
    examples, rejected = load_sft_examples(prof.sft.data)
    wh.replace_partition("quarantine", rejected, source=source_label(prof.sft.data))
    device, use_4bit = compute.resolved_device(), compute.use_4bit()
    work = sft_dir(artifacts, family.name)
    config = {"profile": prof.name, "base_model": family.base_model, "sft": to_dict(prof.sft)}
    context.log.info(f"SFT {family.name}: {len(examples)} examples on {device} ({'QLoRA' if use_4bit else 'LoRA fp32'})")
    result = train_sft(
        base_path, examples, work, prof.sft, device=device, use_4bit=use_4bit, callbacks=[log_progress_callback(context, "SFT")],
        artifact_root=artifacts_dir(), other_runs="discard",  # the asset owns the folder (see train_sft)
    )
    location = artifacts.publish(work / "adapter", "sft", family.name, "adapter")
    artifacts.publish(work / "merged", "sft", family.name, "merged")  # the base DPO adapters name
    sha = artifacts.record(
        wh,
        run_id=context.run_id,
        family=family.name,
        seed=prof.sft.seed,
        stage="sft",
        strategy="sft",
        local_dir=work / "adapter",
        location=location,
        config=config,
        metrics=result.metrics,
    )
    # Checkpoints exist to survive a kill; once the adapter is saved they only go stale.
    for ckpt in work.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)
    return dg.MaterializeResult(
        data_version=adapter_version(work / "adapter"),  # its weights and config
        metadata={
            "adapter_path": dg.MetadataValue.path(location),
            "sha256": sha,
            "precision_mode": result.metrics["precision_mode"],
            "final_loss": dg.MetadataValue.float(float(result.metrics["final_loss"] or float("nan"))),
            "first_loss": dg.MetadataValue.float(float(result.metrics["first_loss"] or float("nan"))),
            "steps": result.metrics["steps"],
            "examples": result.metrics["examples"],
            **row_count(1),
            "quarantined": len(rejected),
            **image_metadata("loss_curve", result.loss_curve_png),
        }
    )
