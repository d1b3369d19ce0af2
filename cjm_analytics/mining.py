"""Process mining over the warehouse: paths, variants, discovered model, conformance.

The heavy part runs in SQL (`sql/mining/`): the touchpoints are put in journey order once
(`journey_steps`: one sorted list per journey, event names as integer codes), and the
directly-follows graph, start/end events, the mining logs, variants, rework and
deviations are all derived from those lists. pm4py then works on those aggregates only, never on raw
rows: the inductive miner on the variant counts, the heuristics miner on the DFG, and
token-based replay of each stage variant (weighted by its journey count) on a Petri net of
the designed journey.

This is the only module that imports pm4py (AGPL-3.0; it prints a notice on import), and
it imports it inside functions so that importing `cjm_analytics` stays fast and quiet.
Inside this module "case" means journey and "activity" means event name or stage.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter, _count_elements  # type: ignore[attr-defined]
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, chain, groupby, pairwise, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cjm_analytics.config import JourneyConfig, MiningSettings
from cjm_analytics.errors import MiningError
from cjm_analytics.warehouse import SQL_DIR, Model, run_models, set_variables, transaction

log = logging.getLogger(__name__)
MINING_SQL_DIR = SQL_DIR / "mining"
#: The SQL models over the touchpoints, in dependency order (file name = table name).
LOG_MODELS: tuple[str, ...] = (
    "mining_event_codes",
    "journey_steps",
    "mining_log",
    "mining_stage_log",
    "journey_paths",
    "dfg_edges",
    "dfg_stage_edges",
    "journey_start_events",
    "journey_end_events",
    "variants",
    "stage_variants",
    "journey_rework",
    "journey_channel_deviations",
    "deviations",
)
#: The models that read the replay results written by `replay_designed_journey`.
CONFORMANCE_MODELS: tuple[str, ...] = ("conformance_by_variant", "conformance_conversion")

#: Level -> (table, column) of the stored variants: each path with its journey count.
VARIANT_TABLES: dict[str, tuple[str, str]] = {
    "event": ("variants", "event_names"),
    "stage": ("stage_variants", "stage_path"),
}

Variants = Counter[tuple[str, ...]]
Dfg = dict[tuple[str, str], int]


@dataclass(frozen=True)
class MiningSummary:
    """What one `build_mining` run produced (counts are journeys unless named otherwise)."""

    journey_count: int
    touchpoint_count: int
    variant_count: int
    stage_variant_count: int
    journeys_without_stage_count: int
    replayed_journey_share: float
    log_fitness: float | None
    conforming_journey_share: float | None
    tables: tuple[str, ...]
    files: tuple[Path, ...]
    #: the discovery still running (`build_mining(finish_discovery=False)`), else None
    discovery: Discovery | None = None


def mining_models(names: Iterable[str]) -> list[Model]:
    """The `sql/mining/<name>.sql` models, in the order given."""
    return [Model("mining", name, MINING_SQL_DIR / f"{name}.sql") for name in names]


def build_mining(
    con: duckdb.DuckDBPyConnection,
    cfg: JourneyConfig,
    out_dir: Path,
    previous: Path | None = None,
    finish_discovery: bool = True,
) -> MiningSummary:
    """Mine `touchpoints` + `journeys`: SQL marts, discovered models, conformance.

    Writes the process tree (.ptml), Petri nets (.pnml) and BPMN (.bpmn) of the discovered
    journey into `out_dir`, and the tables listed in `LOG_MODELS`, `CONFORMANCE_MODELS`,
    `discovered_model_edges`, `stage_variant_fitness`, `designed_stages` and
    `designed_transitions` into the warehouse. With `previous` (the published warehouse),
    per-journey models are recomputed only for `night_changed_customers`
    (cjm_analytics.incremental).

    With `finish_discovery=False` the discovery is left running on its thread: the summary's
    `discovery` must be finished by the caller (`Discovery.finish`, which writes
    `discovered_model_edges`), and its `files` are empty until then (ADR 0123).
    """
    _require_tables(con, ("touchpoints", "journeys"))
    _require_event_names(con)
    load_designed_journey(con, cfg)
    set_variables(con, {"mining_allow_late_entry": cfg.mining.conformance_allow_late_entry})
    from cjm_analytics import incremental

    tables = incremental.run_models(con, mining_models(LOG_MODELS), previous)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # pm4py's discovery is Python on one core: the replay and the conformance models (SQL
    # on DuckDB's threads) run beside it, each thread on a connection of its own (ADR 0115).
    discovery = start_discovery(con, cfg.mining, out_dir)
    try:
        log_fitness = replay_designed_journey(con, cfg, previous is not None)
        tables += run_models(con, mining_models(CONFORMANCE_MODELS))
        log.debug("conformance models built beside the discovery")
        discovery.wait_for_inputs()  # its reads are done before `con` may close
    except BaseException:
        discovery.abandon()
        raise
    tables += ["discovered_model_edges", "stage_variant_fitness"]
    files = discovery.finish(con) if finish_discovery else ()
    return _summary(con, tables, files, log_fitness, None if finish_discovery else discovery)


#: The interpreter's switch interval (seconds) while a thread runs seconds of Python beside
#: the night's statements: the discovery (see Discovery), the build step's warm imports.
SHORT_SWITCH_INTERVAL = 0.0005


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """For a thread that holds the interpreter lock for seconds: while it runs, a thread
    coming back from a short DuckDB call waits for the lock up to the switch interval (5 ms
    by default) each time. A shorter interval inside the block keeps the night's many small
    statements from queueing behind it (10M incremental night: the changes step beside the
    discovery 1.55 -> 0.45 s). Process-wide; given back when the block ends."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SHORT_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class Discovery:
    """pm4py's discovery running on a thread of its own (`start_discovery`).

    The thread first reads everything it needs from the warehouse, on a cursor of its own
    that it then closes; from then on it is Python alone, and may outlive the connection it
    was started from (the night finishes it at publish, ADR 0123). Nothing else imports
    pm4py while it runs (two threads importing pm4py can deadlock on its modules)."""

    def __init__(
        self, cursor: duckdb.DuckDBPyConnection, settings: MiningSettings, out_dir: Path
    ) -> None:
        self._inputs_read = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cjm-discovery")
        self._future = self._pool.submit(self._run, cursor, settings, out_dir)

    def _run(
        self, cursor: duckdb.DuckDBPyConnection, settings: MiningSettings, out_dir: Path
    ) -> tuple[tuple[Path, ...], list[dict[str, Any]]]:
        began = time.perf_counter()
        with short_switch_interval():
            try:
                with cursor:
                    inputs = discovery_inputs(cursor)
            finally:
                self._inputs_read.set()
            found = discover_from(inputs, settings, out_dir)
        log.debug("models discovered: %.2f s", time.perf_counter() - began)
        return found

    def wait_for_inputs(self) -> None:
        """Return once the thread no longer reads the warehouse (raise its error, if any)."""
        self._inputs_read.wait()
        if self._future.done():
            self._result()

    def finish(self, con: duckdb.DuckDBPyConnection) -> tuple[Path, ...]:
        """Wait for the models, write `discovered_model_edges` on `con`; the files written."""
        try:
            files, edges = self._result()
        finally:
            self._pool.shutdown(wait=False)
        _write_table(con, "discovered_model_edges", edges, _MODEL_EDGE_SCHEMA)
        return files

    def _result(self) -> tuple[tuple[Path, ...], list[dict[str, Any]]]:
        try:
            return self._future.result()
        except MiningError:
            raise
        except Exception as exc:  # a night may finish it at publish: say what it was
            raise MiningError(
                f"process model discovery failed: {type(exc).__name__}: {exc}"
            ) from exc

    def abandon(self) -> None:
        """Give up on the result (the night failed): wait for the thread to end, quietly."""
        self._pool.shutdown(wait=True)


def start_discovery(
    con: duckdb.DuckDBPyConnection, settings: MiningSettings, out_dir: Path
) -> Discovery:
    """Start `discover_from` on a thread, reading its inputs on a cursor of `con`."""
    return Discovery(con.cursor(), settings, out_dir)


def import_pm4py() -> None:
    """Import pm4py (a second or two of Python on first use; the night imports it early,
    beside the build step's SQL: pipeline.WARM_IMPORTS)."""
    import pm4py  # noqa: F401


def _require_tables(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    present = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
    missing = [name for name in names if name not in present]
    if missing:
        raise MiningError(
            f"mining needs the warehouse tables {missing} (columns in cjm_analytics/schema.py); "
            "build the touchpoints and journeys first"
        )


def _require_event_names(con: duckdb.DuckDBPyConnection) -> None:
    missing = con.execute(
        "select count(*), any_value(touchpoint_id) from touchpoints where event_name is null"
    ).fetchall()[0]
    if missing[0]:
        raise MiningError(
            f"touchpoints: {missing[0]} row(s) have no event_name (e.g. touchpoint_id "
            f"{missing[1]!r}); every touchpoint needs one to be mined (ingest rejects such events)"
        )


def load_designed_journey(con: duckdb.DuckDBPyConnection, cfg: JourneyConfig | None) -> None:
    """Write the designed map from journey.yaml into `designed_stages` and `designed_transitions`.

    designed_stages: one row per stage (stage, stage_order, is_success, expected_channels).
    designed_transitions: one row per allowed move (from_stage, to_stage).
    With no config (a bare event log) both tables are created empty.
    """
    stages = cfg.stages if cfg is not None else []
    names = [stage.name for stage in stages]
    transitions = cfg.designed_transitions if cfg is not None else []
    for index, (source, target) in enumerate(transitions):
        for stage in (source, target):
            if stage not in names:
                raise MiningError(
                    f"journey.yaml designed_journey.transitions[{index}]: unknown stage {stage!r}; "
                    f"allowed: {names}"
                )
    con.execute(
        "create or replace table designed_stages (stage varchar, stage_order integer, "
        "is_success boolean, expected_channels varchar[])"
    )
    con.execute(
        "create or replace table designed_transitions (from_stage varchar, to_stage varchar)"
    )
    for order, designed in enumerate(stages, start=1):
        con.execute(
            "insert into designed_stages values (?, ?, ?, ?)",
            [designed.name, order, designed.success, designed.channels],
        )
    for source, target in transitions:
        con.execute("insert into designed_transitions values (?, ?)", [source, target])


# --- reading the aggregates back ------------------------------------------------------------


def variant_counts(con: duckdb.DuckDBPyConnection, level: str = "event") -> Variants:
    """Journeys per variant, {activity tuple: journey count}, from `variants`/`stage_variants`."""
    table, column = VARIANT_TABLES[level]
    query = f"select {column}, journey_count from {table}"
    # one str object per activity name, not one per step: pm4py's miner compares activities
    # millions of times, and equal objects compare by identity first (ADR 0111). Read as
    # Arrow and encoded (10M: 1.55 -> 0.66 s for 178,384 variants), not a list per row.
    table = con.sql(query).to_arrow_table()
    paths = table.column(0).combine_chunks()
    encoded = pc.dictionary_encode(paths.flatten(), null_encoding="encode")
    # every step's name object once, then each variant a tuple of one slice of them
    names = list(map(encoded.dictionary.to_pylist().__getitem__, encoded.indices.to_pylist()))
    first, *_ = offsets = paths.offsets.to_pylist()  # flatten() starts at the first offset
    return Counter(
        {
            tuple(names[start - first : end - first]): int(count)
            for start, end, count in zip(
                offsets[:-1], offsets[1:], table.column(1).to_pylist(), strict=True
            )
        }
    )


def dfg_counts(con: duckdb.DuckDBPyConnection, level: str = "event") -> Dfg:
    """Directly-follows counts, {(from, to): transitions}, from `dfg_edges`/`dfg_stage_edges`."""
    query = {
        "event": "select from_event_name, to_event_name, transition_count from dfg_edges",
        "stage": "select from_stage, to_stage, transition_count from dfg_stage_edges",
    }[level]
    return {(a, b): int(n) for a, b, n in con.execute(query).fetchall()}


def endpoint_counts(variants: Variants) -> tuple[dict[str, int], dict[str, int]]:
    """Start and end activities with their journey counts, from the variant counts."""
    starts: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    for path, count in variants.items():
        if path:
            starts[path[0]] += count
            ends[path[-1]] += count
    return dict(starts), dict(ends)


# --- discovery ---------------------------------------------------------------------------


def discover_tree(variants: Variants, noise_threshold: float = 0.0) -> Any:
    """Inductive miner on variant counts (IMf when noise_threshold > 0), as pm4py folds it.

    Gives the same tree as `pm4py.discover_process_tree_inductive` on the whole log.
    """
    from pm4py.algo.discovery.inductive.dtypes.im_ds import IMDataStructureUVCL
    from pm4py.algo.discovery.inductive.variants.im import IMUVCL
    from pm4py.algo.discovery.inductive.variants.imf import IMFUVCL
    from pm4py.objects.process_tree.utils import generic as tree_utils

    if not variants:
        raise MiningError(
            "cannot discover a model from an empty log (no journeys with touchpoints)"
        )
    parameters = {"noise_threshold": noise_threshold}
    miner = IMFUVCL(parameters) if noise_threshold > 0 else IMUVCL(parameters)
    with _fast_inductive_miner():
        tree = miner.apply(IMDataStructureUVCL(Counter(variants)), parameters)
    tree = tree_utils.fold(tree)
    tree_utils.tree_sort(tree)
    return tree


def uvcl_dfg(log: Variants) -> Any:
    """pm4py's DFG of variant counts, equal to `discover_dfg_uvcl` (same counts, same key order).

    pm4py's version updates a Counter with a one-key dict per step and scans every variant
    once per activity for the start and end activities; the inductive miner calls it for
    every sub-log, which was most of its time (ADR 0076). Here: one pass over the variants;
    start and end activities are inserted in sorted order, as pm4py's alphabet loop does.
    """
    from pm4py.objects.dfg.obj import DFG

    dfg = DFG()
    graph = dfg.graph
    starts: Counter[Any] = Counter()
    ends: Counter[Any] = Counter()
    # Every variant once, in one C call each (the keys in the order of first occurrence, as
    # pm4py's loop inserts them), then the extra journeys of the variants seen more than
    # once, whose keys are there already. `_count_elements` is what Counter.update calls
    # for an iterable, without a Python call and an isinstance check per variant.
    paths = [path for path in log if path]
    _count_elements(graph, chain.from_iterable(map(pairwise, paths)))
    _count_elements(starts, map(itemgetter(0), paths))
    _count_elements(ends, map(itemgetter(-1), paths))
    for path, count in log.items():
        if count > 1 and path:
            for pair in pairwise(path):
                graph[pair] += count - 1
            starts[path[0]] += count - 1
            ends[path[-1]] += count - 1
    for activity in sorted(starts):
        dfg.start_activities[activity] = starts[activity]
    for activity in sorted(ends):
        dfg.end_activities[activity] = ends[activity]
    return dfg


def projected_dfgs(log: Variants) -> Callable[[str], Any]:
    """For each activity `c`, the DFG pm4py builds of `log` with `c` removed from every trace,
    from one pass over the variants instead of one projection of the whole log per activity.

    This is what the inductive miner's activity-concurrent fall-through tries, activity by
    activity (ADR 0111). Removing `c` keeps every other adjacent pair and adds one pair across
    each maximal run of `c` (a c c b gives a b); a run at either end moves the start or end
    activity. The graph's keys come in pm4py's order, the order of first occurrence over the
    projected variants: the earliest variant holding a pair after projection, then its
    position there. Counts are the sums over the variants; pm4py's projection keeps only
    the last count of variants that project onto the same trace, but the cuts this is used
    for read edges and start/end activities, never counts.
    """
    from pm4py.objects.dfg.obj import DFG

    # A trace as its runs (a a b -> a b): removing c joins x and y wherever a run of c sits
    # between them, so the runs (x, c, y) are the pairs removing c adds. Most variants are
    # journeys seen once: their counts go through Counter.update, and positions are looked
    # up only in the few variants that bring a pair or run not seen before.
    first: dict[tuple[str, str], tuple[int, int]] = {}
    counts: Counter[tuple[str, str]] = Counter()
    starts: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    first_run: dict[tuple[str, str, str], tuple[int, int]] = {}
    runs: Counter[tuple[str, str, str]] = Counter()
    start_gains: Counter[tuple[str, str]] = Counter()  # (removed, new start)
    end_gains: Counter[tuple[str, str]] = Counter()  # (removed, new end)
    for index, (path, count) in enumerate(log.items()):
        if not path:
            continue
        starts[path[0]] += count
        ends[path[-1]] += count
        compact = [activity for activity, _ in groupby(path)]
        known_pairs, known_runs = len(counts), len(runs)
        if count == 1:
            counts.update(pairwise(path))
            runs.update(zip(compact, compact[1:], compact[2:], strict=False))
        else:
            for pair in pairwise(path):
                counts[pair] += count
            for run in zip(compact, compact[1:], compact[2:], strict=False):
                runs[run] += count
        if len(counts) > known_pairs:  # a pair not seen before: note where
            for position, pair in enumerate(pairwise(path)):
                first.setdefault(pair, (index, position))
        if len(runs) > known_runs:
            run_ends = list(accumulate(len(tuple(run)) for _, run in groupby(path)))
            between = zip(compact, compact[1:], compact[2:], strict=False)
            for position, run in enumerate(between):  # x's last position in the trace
                first_run.setdefault(run, (index, run_ends[position] - 1))
        if len(compact) > 1:
            start_gains[(compact[0], compact[1])] += count
            end_gains[(compact[-1], compact[-2])] += count
    bridges: dict[str, dict[tuple[str, str], tuple[int, tuple[int, int]]]] = {}
    for (before, removed, after), count in runs.items():  # one run per (removed, pair)
        bridges.setdefault(removed, {})[(before, after)] = (
            count,
            first_run[(before, removed, after)],
        )

    def without(removed: str) -> Any:
        across = bridges.get(removed, {})
        entries = []
        for pair, seen in first.items():
            if removed in pair:
                continue
            bridge = across.get(pair)
            if bridge is None:
                entries.append((seen, pair, counts[pair]))
            else:
                entries.append((min(seen, bridge[1]), pair, counts[pair] + bridge[0]))
        entries += [(b[1], pair, b[0]) for pair, b in across.items() if pair not in first]
        entries.sort(key=lambda entry: entry[0])  # positions are unique per pair
        dfg = DFG()
        for _, pair, count in entries:
            dfg.graph[pair] = count
        for source, target, gains in (
            (starts, dfg.start_activities, start_gains),
            (ends, dfg.end_activities, end_gains),
        ):
            kept = Counter({a: n for a, n in source.items() if a != removed})
            kept.update({a: n for (r, a), n in gains.items() if r == removed})
            for activity in sorted(kept):
                target[activity] = kept[activity]
        return dfg

    return without


def concurrent_activity_candidate(
    obj: Any, parameters: dict[str, Any] | None = None
) -> tuple[str, Callable[[str], Any]] | None:
    """pm4py's `ActivityConcurrentUVCL._get_candidate` without multiprocessing: the first
    activity, in sorted order, whose removal leaves a log on which one of the IM cuts holds;
    returned with the `projected_dfgs` of the log.

    pm4py projects the whole log once per activity tried and runs each cut, projection
    included; only whether a cut holds is used. Here the DFG of each projection comes from
    `projected_dfgs` and only the cuts' `holds` runs (every cut's `apply` is `holds` then
    `project`, and `project` never turns a holding cut into None). The sub-log is left
    empty: a cut that read it instead of the DFG would fail the tests, not pass silently.
    """
    from pm4py.algo.discovery.inductive.cuts.factory import CutFactory
    from pm4py.algo.discovery.inductive.dtypes.im_ds import IMDataStructureUVCL
    from pm4py.algo.discovery.inductive.variants.instances import IMInstance
    from pm4py.util.compression import util as compression

    log = obj.data_structure
    candidates = sorted(compression.get_alphabet(log))
    if not candidates:
        return None
    without = projected_dfgs(log)
    for candidate in candidates:
        projected = IMDataStructureUVCL(Counter(), dfg=without(candidate))
        for cut in CutFactory.get_cuts(projected, IMInstance.IM, parameters=parameters):
            if cut.holds(projected, parameters) is not None:
                return candidate, without
    return None


def split_concurrent_activity(obj: Any, parameters: dict[str, Any] | None = None) -> Any:
    """pm4py's `ActivityConcurrentUVCL.apply` without multiprocessing: the activity found by
    `concurrent_activity_candidate` in parallel with the rest of the log.

    The same two sub-logs, built in one pass with summed counts and pm4py's key order; the
    rest's DFG is the candidate's projected DFG, which equals the one pm4py computes from
    it (these counts are sums too), so it is not computed a second time.
    """
    from pm4py.algo.discovery.inductive.dtypes.im_ds import IMDataStructureUVCL
    from pm4py.objects.process_tree.obj import Operator, ProcessTree

    found = concurrent_activity_candidate(obj, parameters)
    if found is None:
        return None
    candidate, without = found
    alone: Counter[tuple[str, ...]] = Counter()
    rest: Counter[tuple[str, ...]] = Counter()
    for path, count in obj.data_structure.items():
        if candidate in path:
            alone[(candidate,) * path.count(candidate)] += count
            rest[tuple(a for a in path if a != candidate)] += count
        else:
            alone[()] += count
            rest[path] += count
    return ProcessTree(operator=Operator.PARALLEL), [
        IMDataStructureUVCL(alone),
        IMDataStructureUVCL(rest, dfg=without(candidate)),
    ]


@contextmanager
def _fast_inductive_miner() -> Iterator[None]:
    """Inside the block, pm4py's inductive miner computes the DFG of each sub-log with
    `uvcl_dfg`, its activity-concurrent fall-through runs `split_concurrent_activity`, and
    its concurrency cut projects with `project_concurrency` (same answers, ADRs 0076, 0111
    and 0118). Left as they are: pm4py's multiprocessing path, and
    the subclasses that inherit `apply` with a `_get_candidate` of their own (the
    activity-once-per-trace fall-through)."""
    from pm4py.algo.discovery.inductive.cuts.concurrency import (
        ConcurrencyCutUVCL as Concurrency,
    )
    from pm4py.algo.discovery.inductive.dtypes.im_ds import IMDataStructureUVCL
    from pm4py.algo.discovery.inductive.fall_through.activity_concurrent import (
        ActivityConcurrentUVCL as Fallthrough,
    )
    from pm4py.util.compression import util as compression

    original_dfg = compression.discover_dfg_uvcl
    original_candidate = Fallthrough.__dict__["_get_candidate"]
    original_apply = Fallthrough.__dict__["apply"]
    original_project = Concurrency.__dict__["project"]

    def project(cls: Any, obj: Any, groups: Any, parameters: Any = None) -> Any:
        if cls is not Concurrency:  # a subclass (POWL's) keeps its own
            return original_project.__func__(cls, obj, groups, parameters)
        return [IMDataStructureUVCL(log) for log in project_concurrency(obj.data_structure, groups)]

    def candidate(cls: Any, obj: Any, pool: Any, manager: Any, parameters: Any = None) -> Any:
        if cls is not Fallthrough or (pool is not None and manager is not None):
            return original_candidate.__func__(cls, obj, pool, manager, parameters)
        found = concurrent_activity_candidate(obj, parameters)
        return None if found is None else found[0]

    def apply(
        cls: Any, obj: Any, pool: Any = None, manager: Any = None, parameters: Any = None
    ) -> Any:
        if cls is not Fallthrough or (pool is not None and manager is not None):
            return original_apply.__func__(cls, obj, pool, manager, parameters)
        return split_concurrent_activity(obj, parameters)

    compression.discover_dfg_uvcl = uvcl_dfg
    Fallthrough._get_candidate = classmethod(candidate)  # type: ignore[method-assign,assignment]
    Fallthrough.apply = classmethod(apply)  # type: ignore[method-assign,assignment]
    Concurrency.project = classmethod(project)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        compression.discover_dfg_uvcl = original_dfg
        Fallthrough._get_candidate = original_candidate  # type: ignore[method-assign]
        Fallthrough.apply = original_apply  # type: ignore[method-assign]
        Concurrency.project = original_project  # type: ignore[method-assign]


def project_concurrency(log: Variants, groups: list[Any]) -> list[Variants]:
    """pm4py's `ConcurrencyCutUVCL.project`: per group, each trace reduced to the group's
    activities, counts added, keys in pm4py's order. pm4py tests membership with a Python
    lambda per activity; `group.__contains__` runs the same test inside `filter`, in C
    (ADR 0118)."""
    logs: list[Variants] = []
    paths = list(log)
    repeated = [(path, count) for path, count in log.items() if count > 1]
    for group in groups:
        keep = group.__contains__
        projected: Variants = Counter()
        # each variant once in C (keys in first-occurrence order), then the extra counts
        _count_elements(projected, map(tuple, map(filter, repeat(keep), paths)))
        for path, count in repeated:
            projected[tuple(filter(keep, path))] += count - 1
        logs.append(projected)
    return logs


def window_counts(variants: Variants) -> tuple[Dfg, dict[tuple[str, str, str], int]]:
    """Pairs two steps apart and consecutive triples, weighted by journeys.

    The heuristics miner needs them to find length-two loops (a b a); from the variant
    counts they are exact and cost one pass over the distinct variants only.
    """
    window_two: Counter[tuple[str, str]] = Counter()
    triples: Counter[tuple[str, str, str]] = Counter()
    for path, count in variants.items():
        if count == 1:  # most variants: counted in C, same keys in the same order
            window_two.update(zip(path, path[2:], strict=False))
            triples.update(zip(path, path[1:], path[2:], strict=False))
            continue
        for first, middle, last in zip(path, path[1:], path[2:], strict=False):
            window_two[(first, last)] += count
            triples[(first, middle, last)] += count
    return dict(window_two), dict(triples)


def stored_window_counts(
    con: duckdb.DuckDBPyConnection, level: str = "event"
) -> tuple[Dfg, dict[tuple[str, str, str], int]]:
    """`window_counts` of the stored variants (`variants`/`stage_variants`), counted by
    DuckDB: each triple at positions i, i+1, i+2 of a path, weighted by its journeys; the
    pairs two apart are the triples summed over their middle step. The same counts
    (pm4py's heuristics miner reads them by key, in no order); 10M event variants: about
    0.95 s in Python."""
    table, column = VARIANT_TABLES[level]
    rows = con.execute(
        f"""
with positions as (
    select {column} as path, journey_count, unnest(generate_series(1, len({column}) - 2)) as i
    from {table}
)
select path[i], path[i + 1], path[i + 2], sum(journey_count)::bigint
from positions
group by all
"""
    ).fetchall()
    window_two: Counter[tuple[str, str]] = Counter()
    triples: dict[tuple[str, str, str], int] = {}
    for first, middle, last, count in rows:
        triples[(first, middle, last)] = int(count)
        window_two[(first, last)] += int(count)
    return dict(window_two), triples


def discover_heuristics(
    dfg: Dfg,
    variants: Variants,
    dependency_threshold: float = 0.5,
    windows: tuple[Dfg, dict[tuple[str, str, str], int]] | None = None,
) -> Any:
    """Heuristics net from the DFG; activity occurrences = incoming edges + journey starts.
    `windows`: the variants' `window_counts` when already counted (`stored_window_counts`).

    Equals `pm4py.discover_heuristics_net` on the whole log (same thresholds).
    """
    from pm4py.algo.discovery.heuristics.variants import classic as heuristics

    starts, ends = endpoint_counts(variants)
    occurrences: Counter[str] = Counter(starts)
    for (_, target), count in dfg.items():
        occurrences[target] += count
    window_two, triples = windows if windows is not None else window_counts(variants)
    return heuristics.apply_heu_dfg(
        dfg,
        activities=sorted(occurrences),
        activities_occurrences=dict(occurrences),
        start_activities=starts,
        end_activities=ends,
        dfg_window_2=window_two,
        freq_triples=triples,
        parameters={"dependency_thresh": dependency_threshold},
    )


@dataclass(frozen=True)
class LevelInputs:
    """What the miners read of one level (event or stage) of the warehouse."""

    variants: Variants
    dfg: Dfg
    windows: tuple[Dfg, dict[tuple[str, str, str], int]]


def discovery_inputs(con: duckdb.DuckDBPyConnection) -> dict[str, LevelInputs]:
    """The stored variants, directly-follows and window counts of each level that has
    variants (`discover_from`'s input)."""
    found: dict[str, LevelInputs] = {}
    for level in ("event", "stage"):
        variants = variant_counts(con, level)
        if variants:
            found[level] = LevelInputs(
                variants, dfg_counts(con, level), stored_window_counts(con, level)
            )
    return found


def discover_from(
    inputs: dict[str, LevelInputs], settings: MiningSettings, out_dir: Path
) -> tuple[tuple[Path, ...], list[dict[str, Any]]]:
    """Discover the inductive and heuristics models at event and stage level.

    Writes `<level>_process_tree.ptml`, `<level>_petri_net.pnml`, `<level>_bpmn.bpmn` and
    `<level>_heuristics_net.pnml` into `out_dir`. Returns the files written and the rows of
    `discovered_model_edges` (`Discovery.finish` writes the table).
    """
    import pm4py

    files: list[Path] = []
    edges: list[dict[str, Any]] = []
    for level, found in inputs.items():
        tree = discover_tree(found.variants, settings.noise_threshold)
        net, initial, final = pm4py.convert_to_petri_net(tree)
        heuristics_net = discover_heuristics(
            found.dfg, found.variants, settings.heuristics_dependency_threshold, found.windows
        )
        heuristics_petri = pm4py.convert_to_petri_net(heuristics_net)
        paths = [
            out_dir / f"{level}_{name}"
            for name in ("process_tree.ptml", "petri_net.pnml", "bpmn.bpmn", "heuristics_net.pnml")
        ]
        pm4py.write_ptml(tree, str(paths[0]))
        pm4py.write_pnml(net, initial, final, str(paths[1]))
        # no auto layout: it needs the Graphviz `dot` binary
        pm4py.write_bpmn(pm4py.convert_to_bpmn(tree), str(paths[2]), auto_layout=False)
        pm4py.write_pnml(*heuristics_petri, str(paths[3]))
        files.extend(paths)
        edges.extend(petri_net_edges(net, "inductive_petri_net", level))
        edges.extend(heuristics_net_edges(heuristics_net, level))
    return tuple(files), edges


_MODEL_EDGE_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("level", pa.string()),
        ("from_node", pa.string()),
        ("from_node_kind", pa.string()),
        ("to_node", pa.string()),
        ("to_node_kind", pa.string()),
        ("transition_count", pa.int64()),
        ("dependency", pa.float64()),
    ]
)


def _node(element: Any) -> tuple[str, str]:
    """(name, kind) of a Petri net place or transition; a transition is named by its label."""
    if hasattr(element, "label"):
        return (element.label, "activity") if element.label else (element.name, "silent")
    return element.name, "place"


def petri_net_edges(net: Any, model: str, level: str) -> list[dict[str, Any]]:
    """One row per arc of a Petri net (place -> transition or transition -> place)."""
    rows = []
    for arc in net.arcs:
        (source, source_kind), (target, target_kind) = _node(arc.source), _node(arc.target)
        rows.append(
            {
                "model": model,
                "level": level,
                "from_node": source,
                "from_node_kind": source_kind,
                "to_node": target,
                "to_node_kind": target_kind,
                "transition_count": None,
                "dependency": None,
            }
        )
    return sorted(rows, key=lambda row: (row["from_node"], row["to_node"]))


def heuristics_net_edges(heuristics_net: Any, level: str) -> list[dict[str, Any]]:
    """One row per dependency edge the heuristics net kept (activity -> activity)."""
    rows = []
    for name, node in heuristics_net.nodes.items():
        for other, node_edges in node.output_connections.items():
            for edge in node_edges:
                rows.append(
                    {
                        "model": "heuristics_net",
                        "level": level,
                        "from_node": name,
                        "from_node_kind": "activity",
                        "to_node": other.node_name,
                        "to_node_kind": "activity",
                        "transition_count": int(edge.dfg_value),
                        "dependency": float(edge.dependency_value),
                    }
                )
    return sorted(rows, key=lambda row: (row["from_node"], row["to_node"]))


# --- conformance to the designed journey ------------------------------------------------------


def designed_net(cfg: JourneyConfig) -> tuple[Any, Any, Any]:
    """Petri net of the designed journey: (net, initial marking, final marking).

    One visible transition per stage. A stage may start the journey when no designed
    transition leads into it (any stage, with `mining.conformance_allow_late_entry`); a designed move a -> b is a silent transition from the place
    after a to the place before b; every stage may end the journey (stopping early is
    abandonment, measured by the funnel, not a deviation from the map).
    """
    from pm4py.objects.petri_net.obj import Marking, PetriNet
    from pm4py.objects.petri_net.utils import petri_utils

    net = PetriNet("designed_journey")
    source, sink = PetriNet.Place("start"), PetriNet.Place("end")
    net.places.update({source, sink})
    before, after = {}, {}
    for stage in cfg.stage_names:
        before[stage], after[stage] = (
            PetriNet.Place(f"before_{stage}"),
            PetriNet.Place(f"after_{stage}"),
        )
        visible = PetriNet.Transition(f"visit_{stage}", stage)
        net.places.update({before[stage], after[stage]})
        net.transitions.add(visible)
        petri_utils.add_arc_from_to(before[stage], visible, net)
        petri_utils.add_arc_from_to(visible, after[stage], net)
    entered = {target for _, target in cfg.designed_transitions}
    if cfg.mining.conformance_allow_late_entry:
        entered = set()
    silent_moves = [(source, before[s], f"enter_{s}") for s in cfg.stage_names if s not in entered]
    silent_moves += [(after[a], before[b], f"move_{a}_to_{b}") for a, b in cfg.designed_transitions]
    silent_moves += [(after[s], sink, f"leave_{s}") for s in cfg.stage_names]
    for origin, destination, name in silent_moves:
        silent = PetriNet.Transition(name, None)
        net.transitions.add(silent)
        petri_utils.add_arc_from_to(origin, silent, net)
        petri_utils.add_arc_from_to(silent, destination, net)
    return net, Marking({source: 1}), Marking({sink: 1})


def replay_variants(
    variants: list[tuple[tuple[str, ...], int]], net: Any, initial: Any, final: Any
) -> list[dict[str, Any]]:
    """Token-based replay of each variant once; one result dict per variant, in order."""
    from pm4py.algo.conformance.tokenreplay.variants import token_replay

    if not variants:
        return []
    return token_replay.apply_variants_list(
        [(path, count) for path, count in variants],
        net,
        initial,
        final,
        parameters={"show_progress_bar": False},
    )


def weighted_log_fitness(results: list[dict[str, Any]], counts: list[int]) -> float:
    """Log fitness from per-variant replay results weighted by journeys (pm4py's formula).

    fitness = 1/2 (1 - missing/consumed) + 1/2 (1 - remaining/produced), tokens summed
    over all journeys; equals replaying every journey one by one.
    """
    missing = sum(r["missing_tokens"] * n for r, n in zip(results, counts, strict=True))
    consumed = sum(r["consumed_tokens"] * n for r, n in zip(results, counts, strict=True))
    remaining = sum(r["remaining_tokens"] * n for r, n in zip(results, counts, strict=True))
    produced = sum(r["produced_tokens"] * n for r, n in zip(results, counts, strict=True))
    if consumed == 0 or produced == 0:
        return 1.0
    return 0.5 * (1 - missing / consumed) + 0.5 * (1 - remaining / produced)


def replay_designed_journey(
    con: duckdb.DuckDBPyConnection, cfg: JourneyConfig, reuse_previous: bool = False
) -> float | None:
    """Replay the most frequent stage variants on the designed net into `stage_variant_fitness`.

    Variants are taken by journey count until `mining.conformance_variant_coverage` of the
    journeys (at most `conformance_max_variants`). Returns the weighted log fitness of the
    replayed journeys, or None when there is nothing to replay. With `reuse_previous` (an
    incremental night: same designed map and code, the published night attached as
    `previous`), a stage path replayed last night keeps last night's result: replaying one
    path on a fixed net does not depend on the other paths.
    """
    rows = con.execute(
        "select stage_variant_id, stage_path, journey_count, "
        "sum(journey_count) over (order by stage_variant_id) - journey_count as journeys_before, "
        "sum(journey_count) over () as total from stage_variants order by stage_variant_id"
    ).fetchall()
    settings = cfg.mining
    chosen = [
        row
        for row in rows[: settings.conformance_max_variants]
        if row[3] < settings.conformance_variant_coverage * row[4]
    ]
    fitness_rows: list[dict[str, Any]] = []
    log_fitness = None
    if chosen and cfg.stages:
        paths = [tuple(r[1]) for r in chosen]
        known = _previous_replays(con) if reuse_previous else {}
        todo = [(p, r[2]) for p, r in zip(paths, chosen, strict=True) if p not in known]
        fresh = dict(
            zip([p for p, _ in todo], replay_variants(todo, *designed_net(cfg)), strict=True)
        )
        results = [known[p] if p in known else fresh[p] for p in paths]
        log_fitness = weighted_log_fitness(results, [r[2] for r in chosen])
        fitness_rows = [
            _fitness_row(row[0], result) for row, result in zip(chosen, results, strict=True)
        ]
    _write_table(con, "stage_variant_fitness", fitness_rows, _FITNESS_SCHEMA)
    return log_fitness


def _previous_replays(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, ...], dict[str, Any]]:
    """Last night's replay result of each stage path it replayed (pm4py's result keys)."""
    rows = con.execute(
        "SELECT v.stage_path, f.trace_fitness, f.is_fit, f.missing_token_count, "
        "f.remaining_token_count, f.consumed_token_count, f.produced_token_count "
        "FROM previous.stage_variant_fitness AS f "
        "JOIN previous.stage_variants AS v USING (stage_variant_id) WHERE f.is_replayed"
    ).fetchall()
    keys = ("trace_fitness", "trace_is_fit", "missing_tokens", "remaining_tokens",
            "consumed_tokens", "produced_tokens")  # fmt: skip
    return {tuple(row[0]): dict(zip(keys, row[1:], strict=True)) for row in rows}


_FITNESS_SCHEMA = pa.schema(
    [
        ("stage_variant_id", pa.int64()),
        ("is_replayed", pa.bool_()),
        ("trace_fitness", pa.float64()),
        ("is_fit", pa.bool_()),
        ("missing_token_count", pa.int64()),
        ("remaining_token_count", pa.int64()),
        ("consumed_token_count", pa.int64()),
        ("produced_token_count", pa.int64()),
    ]
)


def _fitness_row(stage_variant_id: int, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "stage_variant_id": stage_variant_id,
        "is_replayed": True,
        "trace_fitness": float(result["trace_fitness"]),
        "is_fit": bool(result["trace_is_fit"]),
        "missing_token_count": int(result["missing_tokens"]),
        "remaining_token_count": int(result["remaining_tokens"]),
        "consumed_token_count": int(result["consumed_tokens"]),
        "produced_token_count": int(result["produced_tokens"]),
    }


def _write_table(
    con: duckdb.DuckDBPyConnection, name: str, rows: list[dict[str, Any]], schema: pa.Schema
) -> None:
    """Replace table `name` (a constant of this module) by `rows`, in one transaction."""
    frame = pa.Table.from_pylist(rows, schema=schema)  # noqa: F841 (read by DuckDB below)
    with transaction(con):
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM frame')


def _summary(
    con: duckdb.DuckDBPyConnection,
    tables: list[str],
    files: tuple[Path, ...],
    log_fitness: float | None,
    discovery: Discovery | None = None,
) -> MiningSummary:
    counts = con.execute(
        """
        select
            (select count(*) from journey_paths),
            (select coalesce(sum(touchpoint_count), 0) from journey_paths),
            (select count(*) from variants),
            (select count(*) from stage_variants),
            (select count(*) from journey_paths where len(stage_path) = 0),
            (select coalesce(sum(journey_count) filter (where is_replayed), 0)
                / nullif(sum(journey_count), 0) from conformance_by_variant),
            (select sum(journey_count) filter (where path_group = 'conforming')
                / nullif(sum(journey_count), 0) from conformance_conversion where scope = 'overall')
        """
    ).fetchall()[0]
    return MiningSummary(
        journey_count=int(counts[0]),
        touchpoint_count=int(counts[1]),
        variant_count=int(counts[2]),
        stage_variant_count=int(counts[3]),
        journeys_without_stage_count=int(counts[4]),
        replayed_journey_share=float(counts[5] or 0.0),
        log_fitness=log_fitness,
        conforming_journey_share=None if counts[6] is None else float(counts[6]),
        tables=tuple(tables),
        files=files,
        discovery=discovery,
    )
