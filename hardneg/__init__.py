"""hardneg: verifier-guided hard negatives and weighted DPO for small math models.

The domain library: plain Python, importable and testable without Dagster. The
Dagster layer (`hardneg_assets`, `resources`, `jobs`) is a thin wrapper around it.
"""

__version__ = "0.1.0"
