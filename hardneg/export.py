"""`hardneg export RUN_ID DIR`: one trained policy as a plain, merged `transformers` model with a model card.

A DPO adapter needs its base (the SFT-merged model for an SFT family) to mean anything; for use
outside the project (vLLM, lm-eval, the Hub) a single merged checkpoint is simpler. This writes
base + DPO adapter merged (`save_pretrained`, safetensors), the tokenizer, `hardneg_export.json`
(provenance, no absolute paths) and a `README.md` model card: base model, SFT data, pairs
sha256, profile, run id and the model's Table 1 row (with 95 % intervals and Math-Verify).

RUN_ID is the evaluation run id `family|seed|strategy` (e.g. `smollm2-135m-sft|0|hardneg`, the
`eval_samples.run_id` of that model), or the Dagster run id that trained exactly one DPO adapter.
The folder is written next to DIR and renamed into place, so DIR never holds half a model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas only for the annotation: `hardneg --help` and `hardneg run`'s checks stay fast
    import pandas as pd

STRATEGIES = ("hardneg", "random")


class ExportError(ValueError):
    """The run cannot be exported (unknown id, ambiguous id, artifact missing); the message says why."""


def find_dpo_run(wh, run_id: str) -> dict:
    """The `training_runs` row (stage 'dpo') that RUN_ID names; `ExportError` when none or several."""
    parts = run_id.split("|")
    if len(parts) == 3 and parts[2] in STRATEGIES:
        family, seed, strategy = parts[0], parts[1], parts[2]
        if not seed.lstrip("-").isdigit():
            raise ExportError(f"run id {run_id!r}: seed {seed!r} is not an integer (expected family|seed|strategy)")
        rows = wh.query("SELECT * FROM training_runs WHERE stage = 'dpo' AND family = ? AND seed = ? AND strategy = ?",
                        [family, int(seed), strategy])
    else:
        rows = wh.query("SELECT * FROM training_runs WHERE stage = 'dpo' AND run_id = ?", [run_id])
    if rows.empty:
        known = wh.query("SELECT family, seed, strategy FROM training_runs WHERE stage = 'dpo' ORDER BY 1, 2, 3")
        names = [f"{r.family}|{r.seed}|{r.strategy}" for r in known.itertuples()]
        raise ExportError(f"no DPO run {run_id!r} in the warehouse; known: {names or 'none'}")
    if len(rows) > 1:
        names = [f"{r.family}|{r.seed}|{r.strategy}" for r in rows.itertuples()]
        raise ExportError(f"run id {run_id!r} trained {len(rows)} DPO adapters; "
                          f"name one as family|seed|strategy: {names}")
    return rows.iloc[0].to_dict()


def _json(value) -> dict:
    if isinstance(value, dict):
        return value
    return json.loads(value) if value else {}


def table1_row(wh, family: str, seed: int, strategy: str) -> pd.DataFrame:
    """This model's Table 1 cells (and its family's base, for comparison), with intervals."""
    from hardneg.report import table1_long

    summary = wh.query("SELECT * FROM eval_summary WHERE family = ? "
                       "AND ((strategy = ? AND seed = ?) OR strategy = 'base')", [family, strategy, seed])
    long = table1_long(summary)
    if long.empty:
        return long
    return long[["strategy", "benchmark", "n_items", "mean", "ci_low", "ci_high", "mean_math_verify"]].round(1)


CARD = """---
library_name: transformers
base_model: {base_model}
tags:
- math
- dpo
- hardneg
---
# {title}

{family} after {strategy_text} (seed {seed}), exported by `hardneg export {run_id}`: the starting
policy with the DPO LoRA adapter merged into its weights; load it with
`AutoModelForCausalLM.from_pretrained(this_folder)`.

| | |
|---|---|
| run id | `{run_id}` (Dagster run `{dagster_run}`) |
| profile | `{profile}` |
| base model | `{base_model}` |
| SFT stage | {sft} |
| DPO | {dpo} |
| preference pairs sha256 | `{pairs_sha}` |
| DPO adapter sha256 | `{adapter_sha}` |

## Table 1 row (Step-DPO protocol; Math-Verify beside it)

{table}

Accuracy in %, 95 % Wilson interval over the items of one seed. Evaluated greedy with the
`qwen2-boxed` prompt. `base` is the family's starting policy, for comparison.

## Held-out DPO pairs

{heldout}
"""


def export_run(run_id: str, out_dir: str | os.PathLike, wh=None, device: str = "cpu") -> str:
    """Merge the named DPO run into its base and write it with a model card to `out_dir`; return the folder."""
    from hardneg.dpo import find_adapter_base
    from hardneg.paths import artifacts_dir, warehouse_path
    from hardneg.policy import load_merged_policy
    from hardneg.training import portable_path
    from hardneg.warehouse import Warehouse

    wh = wh or Warehouse(warehouse_path())
    row = find_dpo_run(wh, run_id)
    family, seed, strategy = row["family"], int(row["seed"]), row["strategy"]
    adapter = Path(str(row["artifact_path"]))
    if "://" in str(row["artifact_path"]):
        raise ExportError(f"{row['artifact_path']} is a remote artifact: copy it locally first")
    if not adapter.is_absolute():
        adapter = artifacts_dir() / adapter
    if not (adapter / "adapter_config.json").exists():
        raise ExportError(f"DPO adapter of {family}|{seed}|{strategy} is missing at {adapter}: "
                          f"re-materialize dpo_{strategy}")
    config, metrics = _json(row["config"]), _json(row["metrics"])
    base = find_adapter_base(adapter)
    model, tokenizer = load_merged_policy(base, [adapter], device)

    sft = wh.query("SELECT config FROM training_runs WHERE stage = 'sft' AND family = ?", [family])
    sft_cfg = _json(sft["config"].iloc[0]) if not sft.empty else {}
    base_model = sft_cfg.get("base_model") or config.get("base_model") or portable_path(base, artifacts_dir())
    try:
        from hardneg.profiles import load_profile

        fam = load_profile(config.get("profile")).family(family) if config.get("profile") else None
        base_model = fam.base_model if fam is not None else base_model
        sft_stage = bool(fam.sft) if fam is not None else bool(sft_cfg)
    except Exception:  # the profile may have changed since: the warehouse record still says enough
        sft_stage = bool(sft_cfg)
    sft_text = (f"SFT LoRA on {json.dumps(sft_cfg.get('sft', {}).get('data'))}, merged" if sft_stage and sft_cfg
                else "none (DPO straight on the base model)")
    dpo_cfg = config.get("dpo", {})
    weighting = dpo_cfg.get("weighting", {})
    kind = "verifier-weighted" if strategy == "hardneg" else "uniform (random pairs)"
    dpo_text = (f"{kind} DPO, β = {dpo_cfg.get('beta')}, "
                f"λ = {weighting.get('lam') if strategy == 'hardneg' else 0}, clip [{weighting.get('w_min')}, "
                f"{weighting.get('w_max')}], lr {dpo_cfg.get('learning_rate')}, {metrics.get('global_step')} steps, "
                f"{metrics.get('n_train_examples')} pairs")
    table = table1_row(wh, family, seed, strategy)
    held = metrics.get("heldout") or {}
    if held.get("after"):
        b, a = held["before"], held["after"]
        heldout = (f"{held['n_pairs']} held-out pairs: reward margin {b['reward_margin']:+.4f} → "
                   f"{a['reward_margin']:+.4f}, reward accuracy {b['reward_accuracy']:.0%} → "
                   f"{a['reward_accuracy']:.0%}, log-likelihood preference "
                   f"{b['ref_logp_accuracy']:.0%} (reference) → {a['logp_accuracy']:.0%} (this model).")
    else:
        heldout = "none held out."
    card = CARD.format(
        base_model=base_model, title=f"{family} + {strategy} DPO (seed {seed})", family=family,
        strategy_text="verifier-guided hard-negative DPO" if strategy == "hardneg" else "random-pair DPO",
        seed=seed, run_id=f"{family}|{seed}|{strategy}", dagster_run=row.get("run_id"), profile=config.get("profile"),
        sft=sft_text, dpo=dpo_text, pairs_sha=metrics.get("pairs_sha256", "n/a"), adapter_sha=row.get("sha256"),
        table=table.to_markdown(index=False) if not table.empty else "_not evaluated yet_", heldout=heldout,
    )
    provenance = {
        "run_id": f"{family}|{seed}|{strategy}", "dagster_run_id": row.get("run_id"), "profile": config.get("profile"),
        "base_model": base_model, "sft": sft_stage, "adapter_sha256": row.get("sha256"),
        "pairs_sha256": metrics.get("pairs_sha256"), "dpo": dpo_cfg,
    }
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        (tmp / "hardneg_export.json").write_text(json.dumps(provenance, indent=2, default=str))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; an export is meant to be shared
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(out)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="write a trained policy as a merged transformers model with a model card")
    p.add_argument("run_id", metavar="RUN_ID", help="family|seed|strategy (e.g. smollm2-135m-sft|0|hardneg) or the "
                   "Dagster run id of a run that trained one DPO adapter")
    p.add_argument("dir", metavar="DIR", help="output folder (replaced if it exists)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to merge (default cpu)")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    import sys

    try:
        path = export_run(args.run_id, args.dir, device=args.device)
    except ExportError as exc:
        print(f"hardneg export: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
