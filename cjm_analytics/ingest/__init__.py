"""Ingestion into the event lake: read each new source file, validate, normalize to
`schema.LAKE_EVENT_COLUMNS`, pseudonymize PII, append Parquet, record the manifest.

Public API:
- `ingest(cfg, as_of=None) -> IngestSummary`
- `load_lake(con, cfg)`: `stg_events`, `ingest_files`, `ingest_rejects` into a warehouse.
"""

from cjm_analytics.ingest.lake import load_lake
from cjm_analytics.ingest.run import FileResult, IngestSummary, ingest

__all__ = ["FileResult", "IngestSummary", "ingest", "load_lake"]
