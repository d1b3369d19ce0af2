"""Identity stitching: identifiers that occur on one event link; connected components are customers.

Grain of the outputs (all in the warehouse connection):
- `events`: one row per `stg_events` row plus `customer_id` (NULL when the event has no
  usable identifier);
- `identity_map`: one row per identifier (kind, value; emails and phones are hashes) with
  its customer, or NULL when it is shared;
- `identity_merges`: one row per merge of two previously known customers (kept = the older)
  and per blocked merge (shared identifier, cluster over the limit);
- `identity_quality`: one row per metric (`metric`, `value`).

Rules (docs/adr/0005-identity-precedence.md, 0008-identity-guards-and-stable-ids.md):
- an identifier is shared when listed in `identity.shared_identifiers` or when it occurs with
  more than `max_partners_per_identifier` distinct identifiers of its own or a more personal
  kind (earlier in `identity.precedence`); shared identifiers never link;
- `case` identifiers never link: each case is its own customer;
- a component over `max_cluster_identifiers` is re-split keeping only links between the
  most personal kinds (dropping the last kind of the precedence, then the next...), down to
  single identifiers;
- components are found by label propagation with pointer jumping in DuckDB (a loop per
  iteration, never per node);
- customer ids are stable: the identifier -> customer map is kept in the lake state; a
  component keeps the id of its known identifiers, on a merge the oldest id wins and the
  merge is logged; a new component's id is a hash of its smallest identifier, so re-running
  a night gives identical ids.

`stitch` recomputes everything from `stg_events`; `stitch_incremental` gives the same tables
and state on a warehouse that holds last night's, re-stitching only the identifiers of new
events and the customers holding them, and lists the changed customers in `stitch_scope`
(docs/adr/0091-incremental-identity-stitch.md).

Modules: `identifiers` (the identifier graph: kinds, links, shared marks), `graph`
(connected components, oversize re-splits), `customers` (customer ids, merge log), `state`
(the identity state in the lake, its fingerprint), `quality` (`StitchSummary`,
`identity_quality`), `full` (`stitch`), `touched` and `incremental` (`stitch_incremental`),
`scoring` (`score_stitching` against a truth file).
"""

from cjm_analytics.identity.customers import LIMIT_REASON
from cjm_analytics.identity.full import stitch
from cjm_analytics.identity.graph import MAX_ITERATIONS, components
from cjm_analytics.identity.identifiers import shared_values
from cjm_analytics.identity.incremental import PREVIOUS_TABLES, stitch_incremental
from cjm_analytics.identity.quality import QUALITY_METRICS, StitchSummary
from cjm_analytics.identity.scoring import StitchScore, score_stitching
from cjm_analytics.identity.state import RULES_VERSION, identity_fingerprint

__all__ = [
    "LIMIT_REASON",
    "MAX_ITERATIONS",
    "PREVIOUS_TABLES",
    "QUALITY_METRICS",
    "RULES_VERSION",
    "StitchScore",
    "StitchSummary",
    "components",
    "identity_fingerprint",
    "score_stitching",
    "shared_values",
    "stitch",
    "stitch_incremental",
]
