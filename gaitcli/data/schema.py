"""The Parquet dataset written by ``gait ingest`` (documented in docs/data-format.md).

Layout under the output folder::

    <OUT>/<subject>/<trial>.continuous.parquet   one row per sample (common rate)
    <OUT>/<subject>/<trial>.cycles.parquet       one row per (cycle, point)
    <OUT>/manifest.json                          what was ingested from which inputs

Key columns come first in every row; channel columns follow with canonical names. Everything
else about a file (units per channel, sources and their sha256, mass, rate, events, notes)
is JSON in the Parquet key-value metadata under ``gait``.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
METADATA_KEY = b"gait"
CONTINUOUS_SUFFIX = ".continuous.parquet"
CYCLES_SUFFIX = ".cycles.parquet"
MANIFEST = "manifest.json"

CONTINUOUS_KEYS = ("subject", "trial", "condition", "time")
CYCLE_KEYS = ("subject", "trial", "condition", "side", "cycle", "point", "percent",
              "event_source", "cycle_start_s", "cycle_duration_s", "stance_percent")
