"""Dagster resources: the DuckDB warehouse, the compute device (the `gpu` pool), the artifact store, the profile.

Layering: `resources/` imports `hardneg` and `dagster` only.
"""

from resources.artifacts import ArtifactStore
from resources.compute import ComputeResource
from resources.profile import ProfileResource
from resources.warehouse import WarehouseResource

__all__ = ["ArtifactStore", "ComputeResource", "ProfileResource", "WarehouseResource"]
