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
-- Cost (ADR 0076, 0106): a touchpoint feature is held at k exactly when the journey's first
--   touchpoint with it comes before it entered k+1 (or it abandoned at k), so features are
--   found once per journey by their first touchpoint_seq (int_journey_touch_features, a
--   per-journey model the incremental night carries forward) instead of once per stage;
--   each feature row carries its outcome flags; only pages at or above a stage's 50th
--   highest count are ranked.
with

facts as (
    select journey_id, stage, stage_order, next_entered_seq, is_abandoned_here, is_moved_on
    from int_journey_stage_facts
    where not is_final_stage and is_entry_observed and (is_moved_on or is_abandoned_here)
),

entry_segments as (
    select * from int_stage_entry_segments where dimension <> 'cohort_week'
),

first_touch_features as (
    select * from int_journey_touch_features
),

touch_features as (
    -- held at k: a touchpoint with the feature before entering k+1 (movers), any (abandoners)
    select facts.stage_order, first_touch_features.feature_kind,
        first_touch_features.feature_value, facts.is_abandoned_here, facts.is_moved_on
    from facts
    inner join first_touch_features
        on first_touch_features.journey_id = facts.journey_id
        and (facts.is_abandoned_here or first_touch_features.first_seq < facts.next_entered_seq)
),

page_features as (
    select * from touch_features where feature_kind = 'page'
),

page_counts as (
    select stage_order, feature_value, count(*) as journey_count
    from page_features
    group by stage_order, feature_value
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

segment_features as (
    select facts.stage_order, entry_segments.dimension as feature_kind,
        entry_segments.segment_value as feature_value, facts.is_abandoned_here, facts.is_moved_on
    from facts
    inner join entry_segments
        on entry_segments.journey_id = facts.journey_id
        and entry_segments.stage_order = facts.stage_order
),

journey_features as (
    -- one row per (journey, stage, feature): the kinds never overlap and each part is unique
    select * from segment_features
    union all
    select * from touch_features where feature_kind <> 'page'
    union all
    select page_features.*
    from page_features
    inner join top_pages
        on top_pages.stage_order = page_features.stage_order
        and top_pages.feature_value = page_features.feature_value
),

totals as (
    select
        stage,
        stage_order,
        count(*) filter (where is_abandoned_here) as abandoned_total,
        count(*) filter (where is_moved_on) as moved_on_total
    from facts
    group by stage, stage_order
),

feature_counts as (
    select
        stage_order,
        feature_kind,
        feature_value,
        count(*) filter (where is_abandoned_here) as abandoned_with,
        count(*) filter (where is_moved_on) as moved_on_with
    from journey_features
    group by stage_order, feature_kind, feature_value
),

final as (
    select
        totals.stage,
        feature_counts.stage_order,
        feature_counts.feature_kind,
        feature_counts.feature_value,
        feature_counts.abandoned_with,
        feature_counts.moved_on_with,
        totals.abandoned_total,
        totals.moved_on_total
    from feature_counts
    inner join totals on totals.stage_order = feature_counts.stage_order
    where feature_counts.abandoned_with + feature_counts.moved_on_with
        >= getvariable('dropoff_min_journeys')
    order by feature_counts.stage_order, feature_counts.feature_kind, feature_counts.feature_value
)

select * from final
