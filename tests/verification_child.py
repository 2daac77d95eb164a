"""Child process of tests/test_verification.py: a sharded verification that the test SIGKILLs.

Why a separate script: a kill must hit a real process that holds the warehouse and the
models, not a thread of the test. The worker is the real `ShardVerifier`; the only change is
that it stops (blocks, never returns) at shard `hold_from`, so the test can always kill the
process with some shards stored and some not, however fast or slow the machine is. The
shards before it run and are stored as in a normal run, and the kill lands while the
process is working (a shard being computed, stored, or blocked).

    python tests/verification_child.py WAREHOUSE CACHE_ROOT FAMILY SEED SHARD_SIZE HOLD_FROM
"""

from __future__ import annotations

import sys
import time
from functools import partial

from hardneg.configuration import to_dict
from hardneg.verification import ShardVerifier, VerificationConfig, verify_partition
from hardneg.verifier import VerifierConfig
from hardneg.warehouse import Warehouse


class HoldingWorker:
    """The real shard worker, except that shards from `hold_from` on never finish."""

    def __init__(self, verifier_config: dict, hold_from: int):
        self.inner = ShardVerifier(verifier_config)
        self.hold_from = hold_from

    def __call__(self, task):
        while task.index >= self.hold_from:
            time.sleep(0.05)  # waiting for the SIGKILL
        return self.inner(task)


def main(argv: list[str]) -> None:
    path, cache_root, family, seed, shard_size, hold_from = argv
    verifier_config = VerifierConfig(use_nli=False)
    verify_partition(
        Warehouse(path), family, int(seed), verifier_config,
        VerificationConfig(engine="local", shard_size=int(shard_size)),
        cache_root=cache_root, log=lambda line: print(line, flush=True),
        make_worker=partial(HoldingWorker, to_dict(verifier_config), int(hold_from)),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
