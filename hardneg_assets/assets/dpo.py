"""`dpo_hardneg` and `dpo_random`: weighted vs uniform DPO per family × seed (SPEC §2.5).

Both strategies share every hyperparameter (the profile's `dpo` section); they differ
only in their pairs and in whether the per-pair weights are used.
"""

import dataclasses
import shutil

import dagster as dg

from hardneg.configuration import to_dict
from hardneg.dpo import train_dpo
from hardneg.pairs import dpo_gate
from hardneg.paths import artifacts_dir
from hardneg.training import portable_path
from hardneg_assets.checks import DPO_CHECKS, dpo_check_results, dpo_check_specs, skipped_results
from hardneg_assets.deferred import asset
from hardneg_assets.metadata import image_metadata, row_count, table_metadata
from hardneg_assets.partitions import FAMILY_SEED, FROM_FAMILY, family_seed, stage_version
from hardneg_assets.policies import dpo_dir, family_policy
from hardneg_assets.versions import adapter_version, text_version
from resources import ArtifactStore, ComputeResource, ProfileResource, WarehouseResource

STRATEGIES = ("hardneg", "random")

PAIRS_SQL = """
SELECT pair_id, problem_id, prompt, chosen, rejected, raw_weight FROM preference_pairs
WHERE family = ? AND seed = ? AND strategy = ? ORDER BY pair_id
"""


def build_dpo_asset(strategy: str) -> dg.AssetsDefinition:
    @asset(
        name=f"dpo_{strategy}",
        metadata=table_metadata("training_runs"),
        check_specs=dpo_check_specs(f"dpo_{strategy}"),
        partitions_def=FAMILY_SEED,
        deps=["funnel", f"preference_pairs_{strategy}", dg.AssetDep("sft_adapter", partition_mapping=FROM_FAMILY)],
        group_name="dpo",
        kinds={"pytorch", "duckdb"},
        pool="gpu",
        code_version=stage_version("2", "dpo", "pairs"),  # pairs: the held-out share
        description=f"LoRA adapter from {'weighted' if strategy == 'hardneg' else 'uniform'} DPO on the {strategy} pairs.",
    )
    def _dpo(
        context: dg.AssetExecutionContext,
        profile: ProfileResource,
        compute: ComputeResource,
        warehouse: WarehouseResource,
        artifacts: ArtifactStore,
    ) -> dg.MaterializeResult:
        prof = profile.load()
        family, seed = family_seed(context)
        wh = warehouse.get()
        if strategy == "hardneg" and not prof.runs_hardneg(seed):
            wh.replace_partition("training_runs", [], family=family, seed=seed, stage="dpo", strategy=strategy)
            reason = f"profile {prof.name} trains hard-negative DPO on seeds {prof.hardneg_seeds}"
            return dg.MaterializeResult(
                data_version=text_version("skipped", reason),
                metadata={"skipped": reason}, check_results=skipped_results(f"dpo_{strategy}", DPO_CHECKS, reason)
            )
        refused = dpo_gate(wh, family, seed, strategy)
        if refused:  # a checkpoint trained earlier on passing pairs stays where it is (and so does its row)
            raise dg.Failure(
                description=f"DPO {strategy} {family}|{seed} refused: a blocking check failed on its funnel or pairs",
                metadata={"failed_checks": dg.MetadataValue.md("\n".join(f"- {r}" for r in refused))},
            )
        pairs = wh.query(PAIRS_SQL, [family, seed, strategy])
        if pairs.empty:
            raise dg.Failure(f"no {strategy} pairs for {family}|{seed}: the funnel selected none, so there is nothing to train on")
        base, adapters = family_policy(prof, family, artifacts)
        work = dpo_dir(artifacts, strategy, family, seed)
        config = {**to_dict(prof.dpo), "seed": seed}
        device = compute.resolved_device()
        run_config = dataclasses.replace(prof.dpo, seed=seed, use_qlora=compute.use_4bit())
        context.log.info(f"DPO {strategy} {family}|{seed}: {len(pairs)} pairs on {device}")
        result = train_dpo(
            base,
            pairs,
            str(work),
            run_config,
            weighted=strategy == "hardneg",
            device=device,
            sft_adapter_path=str(adapters[0]) if adapters else None,
            progress_callback=lambda step, total, logs: context.log.info(f"DPO {strategy} step {step}/{total}: {logs}"),
            heldout_fraction=prof.pairs.heldout_fraction,
            artifact_root=str(artifacts_dir()),
            other_runs="discard",  # the asset owns the folder: a killed run on other pairs is not resumed
        )
        # Checkpoints exist to survive a kill; once the adapter is saved they only go stale.
        for ckpt in work.glob("checkpoint-*"):
            shutil.rmtree(ckpt, ignore_errors=True)
        location = artifacts.publish(work / "adapter", "dpo", strategy, family, str(seed), "adapter")
        sha = artifacts.record(
            wh,
            run_id=context.run_id,
            family=family,
            seed=seed,
            stage="dpo",
            strategy=strategy,
            local_dir=work / "adapter",
            location=location,
            config={"profile": prof.name, "base_path": portable_path(base, artifacts_dir()), "dpo": config,
                    "pairs": to_dict(prof.pairs)},
            metrics=result.metrics,
        )
        last = next((e for e in reversed(result.log_history) if "loss" in e), {})
        held = result.metrics.get("heldout") or {}
        heldout_meta = {
            f"heldout/{when}/{k}": dg.MetadataValue.float(float(held[when][k]))
            for when in ("before", "after") if held.get(when)
            for k in ("reward_margin", "reward_accuracy", "logp_accuracy", "logp_margin")
        }
        return dg.MaterializeResult(
            data_version=adapter_version(work / "adapter"),  # its weights and config
            metadata={
                "adapter_path": dg.MetadataValue.path(location),
                "sha256": sha,
                "pairs": len(pairs),
                **row_count(1),
                "precision_mode": str(result.metrics.get("precision", "")),
                "final_loss": dg.MetadataValue.float(float(last.get("loss", float("nan")))),
                "final_reward_margin": dg.MetadataValue.float(float(last.get("rewards/margins", float("nan")))),
                **{k: dg.MetadataValue.float(float(v)) for k, v in last.items() if k.startswith("weight/")},
                "heldout_pairs": int(result.metrics.get("n_heldout_pairs", 0)),
                **heldout_meta,
                **image_metadata("loss_curve", result.loss_curve_png),
            },
            check_results=dpo_check_results(f"dpo_{strategy}", result.log_history),
        )

    return _dpo


dpo_assets = [build_dpo_asset(s) for s in STRATEGIES]
