"""Records that must never be loaded again (erased people): left out of a source before dlt writes anything."""
from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.source import DltSource


def leave_out(source: DltSource, ids: AbstractSet[str], key: str = "id") -> DltSource:
    """Drop every item whose ``key`` is one of ``ids`` from each resource of ``source`` (Arrow tables are
    filtered row by row, dict items dropped), in the extract step, so none reaches a load file or the warehouse."""
    if not ids:
        return source
    wanted_out = pa.array(sorted(ids), pa.string())

    def without(item: Any) -> Any:
        if isinstance(item, pa.Table) and key in item.column_names:
            return item.filter(pc.invert(pc.fill_null(pc.is_in(item[key], value_set=wanted_out), False)))
        return item

    def kept(item: Any) -> bool:
        return not (isinstance(item, dict) and item.get(key) in ids)

    for resource in source.resources.values():
        resource.add_map(without).add_filter(kept)
    return source
