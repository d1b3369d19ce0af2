-- int_dropoff_feature_counts: 2x2 counts of journey features against abandoning a stage,
-- the input of the dropoff_drivers mart (odds ratios and tests: cjm_analytics.drivers).
--
-- Grain: one row per (non-final stage, feature_kind, feature_value) held by at least
--   getvariable('dropoff_min_journeys') journeys of that stage's population.
-- Key: (stage_order, feature_kind, feature_value).
-- Population at stage k: journeys whose entry to k was observed (is_entry_observed) and
--   that moved on from k or abandoned at k. In-progress journeys are left out (no outcome
--   yet); journeys first seen beyond k are left out (they never were at k, ADR 0024).
-- Features of a journey at stage k (each counted once per journey):
--   its segment values known when it entered k (int_stage_entry_segments, no look-ahead;
--     cohort weeks are left out);
--   from its touchpoints before it entered k+1 (movers) or all of them (abandoners), so
--   what happened after moving on cannot explain staying: 'channel' (touchpoint channel),
--   'touchpoint' (source: event name), 'failed_call' (value 'yes': an event in
--   emotion.failed_call_events) and 'page' (page_url without query or fragment; only the
--   50 pages most journeys of the stage visited, so thousands of product pages do not
--   become thousands of tests).
-- Counts: abandoned_with / moved_on_with = journeys with the feature that abandoned at k /
--   moved on; abandoned_total / moved_on_total = the whole population at k.
-- Cost (ADR 0076, 0106, 0109): the counts and totals are int_stage_feature_counts (every
--   feature and page, additive: the incremental night updates it instead of recounting;
--   the population is defined there, its totals are the rows with no feature); here each
--   stage keeps its 50 most frequent pages (only pages at or above a stage's 50th highest
--   count are ranked) and the features held by enough journeys.
with

counts as (
    select * from int_stage_feature_counts
),

feature_counts as (
    select * from counts where feature_kind is not null
),

stages as (
    select stage, stage_order from stage_definitions
),

page_counts as (
    select stage_order, feature_value, abandoned_with + moved_on_with as journey_count
    from feature_counts
    where feature_kind = 'page'
),

page_count_floors as (
    -- the 50th highest count of each stage: only pages at or above it can be in its top 50,
    -- so the ranking sorts a few rows, not every (stage, page)
    select stage_order, list_min(max(journey_count, 50)) as floor_count
    from page_counts
    group by stage_order
),

top_pages as (
    select page_counts.stage_order, page_counts.feature_value
    from page_counts
    inner join page_count_floors on page_count_floors.stage_order = page_counts.stage_order
    where page_counts.journey_count >= page_count_floors.floor_count
    qualify row_number() over (
        partition by page_counts.stage_order
        order by page_counts.journey_count desc, page_counts.feature_value
    ) <= 50
),

kept_counts as (
    select * from feature_counts where feature_kind <> 'page'
    union all
    select feature_counts.*
    from feature_counts
    inner join top_pages
        on top_pages.stage_order = feature_counts.stage_order
        and top_pages.feature_value = feature_counts.feature_value
    where feature_counts.feature_kind = 'page'
),

totals as (
    -- the population's rows of int_stage_feature_counts (feature_kind NULL)
    select
        stages.stage,
        counts.stage_order,
        counts.abandoned_with as abandoned_total,
        counts.moved_on_with as moved_on_total
    from counts
    inner join stages on stages.stage_order = counts.stage_order
    where counts.feature_kind is null
),

final as (
    select
        totals.stage,
        kept_counts.stage_order,
        kept_counts.feature_kind,
        kept_counts.feature_value,
        kept_counts.abandoned_with,
        kept_counts.moved_on_with,
        totals.abandoned_total,
        totals.moved_on_total
    from kept_counts
    inner join totals on totals.stage_order = kept_counts.stage_order
    where kept_counts.abandoned_with + kept_counts.moved_on_with
        >= getvariable('dropoff_min_journeys')
    order by kept_counts.stage_order, kept_counts.feature_kind, kept_counts.feature_value
)

select * from final
