"""Regenerate docs/warehouse.md: run two tiny nights (tests/_tiny_night.py), list every table
and column of the published warehouse, and take each table's text from its sql/ header
comment, or from TEXT below for tables built in Python.

    .venv/bin/python docs/generate_warehouse_md.py

tests/test_docs.py fails when a table or column is missing from the page: add a Python-built
table to TEXT (owner section, where it is built, grain/key/definition) and rerun this.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("CJM_PII_SALT", "docs-generator-salt-not-a-secret")

import _tiny_night as tiny  # noqa: E402

from cjm_analytics import warehouse  # noqa: E402

INTRO = """\
# The warehouse: every table

The nightly run publishes one DuckDB file (`paths.warehouse` in journey.yaml; the demo's is
`data/warehouse/cjm.duckdb`). Open it **read-only**, so you never block the nightly run and it
never blocks you:

```sh
duckdb -readonly data/warehouse/cjm.duckdb          # DuckDB CLI (1.5 or newer)
cjm query "SELECT * FROM stage_funnel"              # the same, printed as a table
```

```python
import duckdb
con = duckdb.connect("data/warehouse/cjm.duckdb", read_only=True)
con.sql("SELECT * FROM stage_funnel").pl()
```

How the file is published (docs/adr/0050): each night builds a new file beside it and
replaces the published one atomically. An open session keeps the night it opened; a new
session sees the new night; the night before is kept as `cjm.duckdb.previous`. The file is
written with `storage_compatibility_version = v1.5.0`, so DuckDB 1.5 clients (CLI, DBeaver,
BI tools) can open it.

Conventions: times are UTC `TIMESTAMP`s named `<event>_at`; `<noun>_count` are counts;
`<noun>_rate` are shares in [0, 1]; durations carry their unit (`_seconds`); booleans start
with `is_`/`has_`. Emails and phone numbers appear only as salted hashes. Definitions of
reached, conversion, abandonment, time in stage and the constraint follow
`../shared/DESIGN.md`; each table below says its grain, key, where it is built, and its
columns. Tables whose name starts with `int_` are intermediate steps kept for auditing a
number; start from the marts (`stage_funnel`, `journeys`, `constraint_stage`...).

`tests/test_docs.py` fails when a warehouse table or column is missing from this page;
regenerate it with `.venv/bin/python docs/generate_warehouse_md.py`.
"""

TEXT = {
    # ingest
    "stg_events": (
        "ingest",
        "`cjm_analytics.ingest.load_lake` and `cjm_analytics.identity.stitch`: a VIEW, not a table (ADR 0090). load_lake points it at the lake's Parquet files listed in the manifest; stitch then points it at the lake columns of `events` (the same rows), so the published file never reads the lake",
        "Grain: one row per event in the lake. Key: (source, event_id).\nThe normalized source events of every loaded file (schema `LAKE_EVENT_COLUMNS`): `event_at` in UTC, emails and phones only as salted hashes (`email_hash`, `phone_hash`), the source's extra columns as JSON in `properties`, and the lineage `source_file` / `source_row` (1-based data row) / `source_event_seq` (the event's place among the events of its row in their listed order: 1, 2, ... for wide records and exploded lists, 0 when the row is one event; it breaks ties after `source_row`, ADR 0063).",
    ),
    "ingest_files": (
        "ingest",
        "`cjm_analytics.ingest.load_lake` (copy of the lake manifest)",
        "Grain: one row per ingested source file. Key: (source, sha256).\nThe manifest: each file's content hash, status (`loaded` or `empty`), and `rows_read = rows_loaded + rows_rejected`; `events_loaded` counts events (a wide call record yields several). A file whose hash is already listed is skipped on the next run. `future_after`: the as-of the file's rows were checked against (later events were rejected as in the future); a full rebuild checks the file against it again (ADR 0101).",
    ),
    "ingest_rejects": (
        "ingest",
        "`cjm_analytics.ingest.load_lake` (copy of the lake's rejects)",
        "Grain: one row per rejected source row (and column). Key: (source_file, source_row, column_name).\nEvery row that could not be loaded, with the reason (unparseable time, missing id, future date, duplicate id, malformed JSON...), the column, and the raw line with emails and phone numbers masked. Nothing is dropped silently.",
    ),
    # identity
    "events": (
        "identity",
        "`cjm_analytics.identity.stitch`",
        "Grain: one row per `stg_events` row. Key: (source, event_id).\nThe lake events plus `customer_id`: the stitched customer (connected component of identifiers that occur together), NULL when the event has no usable identifier. Ids are stable across nights (the identifier map is kept in the lake state); on a merge the older id wins.",
    ),
    "identity_map": (
        "identity",
        "`cjm_analytics.identity.stitch`",
        "Grain: one row per identifier. Key: (identifier_kind, identifier_value).\nEach identifier (cookie, user id, email hash, phone hash, contact id, case) with its customer; `is_shared` identifiers (listed in `identity.shared_identifiers`, or seen with more than `max_partners_per_identifier` partners) never link and have `customer_id` NULL; `partner_count` is the number of distinct identifiers seen with it.",
    ),
    "identity_merges": (
        "identity",
        "`cjm_analytics.identity.stitch`",
        "Grain: one row per merge of two known customers, per shared identifier and per re-split cluster. No key (a log).\n`kept_customer_id` absorbed `merged_customer_id` through `edge`; blocked links have `is_blocked` true and a `reason`.",
    ),
    "identity_quality": (
        "identity",
        "`cjm_analytics.identity.stitch`",
        "Grain: one row per stitch-quality metric. Key: metric.\nShare of events on an identified customer, customers, identifiers, shared identifiers, merges, blocked links, clusters over the limit, largest cluster, label-propagation iterations.",
    ),
    # stage config tables
    "stage_definitions": (
        "stages",
        "`cjm_analytics.stages.load_stage_tables` (from journey.yaml)",
        "Grain: one row per configured stage. Key: stage_order (also stage).\nThe ordered stages of journey.yaml, with the success stage and the final stage marked.",
    ),
    "stage_rules": (
        "stages",
        "`cjm_analytics.stages.load_stage_tables` (from journey.yaml)",
        "Grain: one row per stage rule. Key: rule_id.\nThe rules that map events to stages, as data (never pasted into SQL): source, event name, URL pattern, channel override, in priority order; an event takes the stage of its first matching rule.",
    ),
    "stage_rule_conditions": (
        "stages",
        "`cjm_analytics.stages.load_stage_tables` (from journey.yaml)",
        "Grain: one row per `where` condition value of a stage rule. Key: (rule_id, condition_id).\nA canonical field or a property (read at `json_path` of `properties`) and the value it must equal.",
    ),
    "segment_dimensions": (
        "stages",
        "`cjm_analytics.journeys.load_setting_tables` (from journey.yaml)",
        "Grain: one row per segment dimension. Key: dimension.\nThe dimensions the funnel is broken down by: the configured `segments` plus `channel` and `cohort_week`.",
    ),
    "emotion_event_kinds": (
        "stages",
        "`cjm_analytics.journeys.load_setting_tables` (from journey.yaml `emotion`)",
        "Grain: one row per (kind, value). Key: both.\nWhich event names are calls and failed calls, and which outcomes are negative, for `stage_sentiment`.",
    ),
    "stage_what_if": (
        "stages",
        "`cjm_analytics.constraint.build_constraint_tables`",
        "Grain: one row per transition k -> k+1 (k a non-final stage). Key: transition.\n`conversion_rate` r_k is the transition's current rate (Wilson interval `conversion_rate_low/high`); `benchmark_rate` = max(r_k, the best Wilson LOWER bound among segment values (`benchmark_dimension`, `benchmark_segment_value`) and recent cohort weeks with at least `funnel.benchmark_min_journeys` journeys reaching k); `headroom_rate` = benchmark - r_k; `downstream_rate` = the product of the current rates after k up to the success stage (0 at or after success); `extra_successes` = reached(k) x headroom x downstream: journeys that would reach the success stage if only this transition rose to its benchmark; `extra_successes_low/_high` a conservative range (not an exact confidence interval); `extra_next_stage_count` = reached(k) x headroom.",
    ),
    "constraint_stage": (
        "stages",
        "`cjm_analytics.constraint.build_constraint_tables`",
        "Grain: one row per finding. Key: finding.\nAmong transitions before the success stage: `constraint` (largest `extra_successes`; NULL transition when none has headroom), `lowest_rate`, `largest_loss` (most abandoned journeys) and `slowest_stage` (longest Kaplan-Meier median time to the next stage), each with its `value`, `value_unit` and a sentence `explanation`. They often differ: a uniform relative lift of any stage lifts the end equally, so the lowest rate alone is not the constraint; headroom against a demonstrated benchmark is.",
    ),
    "dropoff_drivers": (
        "stages",
        "`cjm_analytics.drivers.build_dropoff_drivers`",
        "Grain: one row per (non-final stage, feature_kind, feature_value). Key: those three.\nJourney features (channel, device, segment, a failed call, a page...) over-represented among journeys that abandoned at the stage versus those that moved on (in-progress journeys left out): `abandonment_rate_with/_without`, `odds_ratio` with a Woolf 95% interval, two-sided Fisher `p_value`, Benjamini-Hochberg `q_value` over the whole table, and `is_driver` (odds ratio > 1 and q < 0.05).",
    ),
    # mining python-built
    "designed_stages": (
        "mining",
        "`cjm_analytics.mining.load_designed_journey` (from journey.yaml)",
        "Grain: one row per stage of the designed journey. Key: stage.\nStage order, the success stage, and the channels the designed journey expects at the stage (`expected_channels`, NULL = any).",
    ),
    "designed_transitions": (
        "mining",
        "`cjm_analytics.mining.load_designed_journey` (from journey.yaml)",
        "Grain: one row per designed transition. Key: (from_stage, to_stage).\nThe transitions the business expects (`designed_journey.transitions`, default each stage to the next).",
    ),
    "discovered_model_edges": (
        "mining",
        "`cjm_analytics.mining.build_mining` (pm4py on the aggregates; a night's discovery is finished and this table written at publish, ADR 0123)",
        "Grain: one row per edge of a discovered model. Key: (model, level, from_node, to_node).\nThe arcs of the Petri nets discovered by the inductive miner (from variant counts) and the heuristics net (from the DFG), at event and stage level; node kinds (`place`, `activity` = a visible transition, `silent` = an invisible one), `transition_count` and heuristics `dependency` where defined. The model files (.ptml, .pnml, .bpmn) are in `runs/<run_id>/`.",
    ),
    "stage_variant_fitness": (
        "mining",
        "`cjm_analytics.mining.build_mining` (token replay)",
        "Grain: one row per stage variant. Key: stage_variant_id.\nToken-based replay of the variant on the Petri net of the designed journey: `trace_fitness`, `is_fit`, and the missing / remaining / consumed / produced token counts; `is_replayed` false beyond the replayed coverage (`mining` settings).",
    ),
    # history
    "build_info": (
        "history",
        "`cjm_analytics.incremental.write_build_info` (build step)",
        "Grain: one row: how tonight's file was built. Key: run_id.\n`is_incremental`: per-customer models were recomputed only for `night_changed_customers` and carried forward from the previous published night for everyone else (ADR 0100; the results equal a full recompute); `incremental_reason` says why (not) in words, e.g. 'configuration or code changed since the published night'; `fingerprint`: a hash of the configuration that decides results and of the code, which the next night compares before carrying this one forward.",
    ),
    "night_changed_customers": (
        "history",
        "`cjm_analytics.incremental.write_changed_customers` (build step)",
        "Grain: one row per customer id whose events changed since the previous published night. Key: customer_id.\nTonight's stitched `events` against the published file's on (source, event_id): a customer with a new event, a customer whose events moved to another id (merged or split identities; both ids are listed), and a customer id that no longer exists. Every customer on the first night. On an incremental night only these customers' touchpoints, journeys' stage entries and paths were recomputed.",
    ),
    "runs": (
        "history",
        "`cjm_analytics.history.install_runs` (from `runs/*/run.json`)",
        "Grain: one row per nightly run, failed ones included. Key: run_id.\n`run_id` sorts by start time; `as_of` is the night's as-of time (UTC) that statuses and abandonment use; `started_at`/`ended_at` UTC; `status` succeeded / failed (a run still going is `running` in its run.json and never in a published warehouse); `is_full_rebuild`; `rows_read_count`, `rows_loaded_count`, `rows_rejected_count` of that night's ingest (new files only); `customer_count`, `journey_count`; `constraint_transition` ('from -> to'); for a failed run `failed_step` and `error_message`; `report_path` of its report. The history lives outside the warehouse (in `paths.runs`) and is copied into every new warehouse, so it survives each nightly rebuild.",
    ),
    "stage_history": (
        "history",
        "`sql/history/night_stage_history.sql` + past nights' Parquet",
        "Grain: one row per succeeded night and stage. Key: (run_id, stage).\nEach night's `stage_funnel` counts and rates (reached, converted, abandoned, in progress, conversion with its Wilson interval, abandonment), stamped with `run_id` and `as_of`: the data of the trends chart. Failed runs contribute nothing.",
    ),
    "segment_history": (
        "history",
        "`sql/history/night_segment_history.sql` + past nights' Parquet",
        "Grain: one row per succeeded night, segment and segment value. Key: (run_id, segment, segment_value).\n`journey_count` and `converted_count` (journeys with `is_converted`) per value of each configured segment column of `journeys` (missing values as '(none)'): the input of the traffic-mix decomposition.",
    ),
    "stage_changes": (
        "history",
        "`cjm_analytics.changes.build_changes`",
        "Grain: one row per stage of tonight. Key: stage.\nTonight's `conversion_rate` against the previous succeeded night's (`previous_run_id`, `previous_reached_count`, `previous_conversion_rate`), `conversion_change` = tonight - previous, a two-proportion z-test with pooled standard error (`z_score`, two-sided `p_value`), and `is_beyond_noise` = p < 0.05. Nights share most journeys, so read it as a screen for what to look at, not a formal test. NULL comparisons on the first night.",
    ),
    "conversion_decomposition": (
        "history",
        "`cjm_analytics.changes.build_changes`",
        "Grain: one row per segment and segment value (tonight vs the previous night). Key: (segment, segment_value).\nThe change in overall conversion (converted journeys / journeys) split per segment dimension into traffic mix and rate (symmetric shift-share, Oaxaca-style): with w a value's share of journeys and r its conversion, `mix_effect` = (w1 - w0)(r0 + r1)/2 and `rate_effect` = (w0 + w1)/2 (r1 - r0). Summed over the values of one segment, mix + rate equals the overall change exactly. A value present on one night only keeps the other night's rate, so its effect is all mix. Empty on the first night.",
    ),
    "alerts": (
        "history",
        "`cjm_analytics.changes.build_changes` (rules: `alerts` in journey.yaml)",
        "Grain: one row per alert that fired tonight. No key.\n`kind` constraint_moved (tonight's constraint transition differs from the previous night's), stage_drop (a stage's conversion fell beyond noise; optionally only `stage`, and by at least `threshold`), rejects_rate (tonight's rejected / read rows above `threshold`, default 0.05); `message` is what the report, the log and the Prefect artifact show; `value` the measured change or rate.",
    ),
}

SECTIONS = [
    ("ingest", "Ingest: the lake in the warehouse"),
    ("identity", "Identity: customers"),
    ("stages", "Stages and journeys"),
    ("mining", "Process mining"),
    ("history", "Run history and what changed"),
]


def sql_file(name):
    hits = list((REPO / "sql").glob(f"*/{name}.sql"))
    return hits[0] if hits else None


def header(path):
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].removeprefix(" "))
    text = "\n".join(lines).strip()
    # drop a leading "name:" prefix repeated from the file name
    return text


def section_of(name, path):
    if name in TEXT:
        return TEXT[name][0]
    layer = path.parent.name
    return {"mining": "mining"}.get(layer, "stages")


n = tiny.tiny_nights()
with warehouse.connection(n.cfg.warehouse_path, read_only=True) as con:
    tables = [
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() union all "
            "select view_name from duckdb_views() where not internal and schema_name = 'main' "
            "order by 1"
        ).fetchall()
    ]
    cols = {
        t: con.execute(
            "select column_name, data_type from duckdb_columns() where table_name=? order by column_index",
            [t],
        ).fetchall()
        for t in tables
    }

#: A line under a section heading.
SECTION_NOTES = {
    "mining": "Built by `cjm_analytics.mining.build_mining` (see docs/adr/0030 and 0031). "
    "Event level = event names, stage level = stage visits.",
}


def previous_types() -> dict[tuple[str, str], str]:
    """(table, column) -> type in the current page, for columns that are all NULL in the
    tiny build (DuckDB types those "NULL"): the page keeps the type it had."""
    page = REPO / "docs" / "warehouse.md"
    found: dict[tuple[str, str], str] = {}
    table = None
    for line in page.read_text(encoding="utf-8").splitlines() if page.exists() else []:
        if line.startswith("### `"):
            table = line.split("`")[1]
        elif line.startswith("| `") and table:
            parts = [p.strip() for p in line.strip("|").split("|")]
            found[(table, parts[0].strip("`"))] = parts[1]
    return found


OLD_TYPES = previous_types()


def column_type(table: str, column: str, data_type: str) -> str:
    if data_type == '"NULL"':
        return OLD_TYPES.get((table, column), "NULL (no value in the docs build)")
    return data_type


by_section = {k: [] for k, _ in SECTIONS}
for t in tables:
    path = sql_file(t)
    by_section[section_of(t, path)].append(t)

out = [INTRO.rstrip() + "\n"]
for key, title in SECTIONS:
    out.append(f"\n## {title}\n")
    if key in SECTION_NOTES:
        out.append(f"\n{SECTION_NOTES[key]}\n")
    for t in by_section[key]:
        path = sql_file(t)
        if t in TEXT:
            built, text = TEXT[t][1], TEXT[t][2]
        else:
            built, text = f"`{path.relative_to(REPO)}`", header(path)
        out.append(f"\n### `{t}`\n\nBuilt by {built}.\n")
        if t not in TEXT:
            out.append("\n```text\n" + text + "\n```\n")
        else:
            out.append("\n" + text + "\n")
        out.append(
            "\n| column | type |\n| --- | --- |\n"
            + "".join(f"| `{c}` | {column_type(t, c, d)} |\n" for c, d in cols[t])
        )
(REPO / "docs" / "warehouse.md").write_text("".join(out), encoding="utf-8")
print(len(tables), "tables")
