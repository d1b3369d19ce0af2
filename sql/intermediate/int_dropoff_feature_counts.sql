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
with

facts as (
    select * from int_journey_stage_facts
    where not is_final_stage and is_entry_observed and (is_moved_on or is_abandoned_here)
),

entry_segments as (
    select * from int_stage_entry_segments where dimension <> 'cohort_week'
),

journey_touchpoints as (
    select journey_id, touchpoint_seq, source, event_name, channel, page_url from touchpoints
),

failed_call_events as (
    select value as event_name from emotion_event_kinds where kind = 'failed_call'
),

segment_features as (
    select facts.journey_id, facts.stage_order, entry_segments.dimension as feature_kind,
        entry_segments.segment_value as feature_value
    from facts
    inner join entry_segments
        on entry_segments.journey_id = facts.journey_id
        and entry_segments.stage_order = facts.stage_order
),

touches_before_outcome as (
    select facts.journey_id, facts.stage_order, journey_touchpoints.source,
        journey_touchpoints.event_name, journey_touchpoints.channel, journey_touchpoints.page_url
    from facts
    inner join journey_touchpoints
        on journey_touchpoints.journey_id = facts.journey_id
        and (facts.is_abandoned_here or journey_touchpoints.touchpoint_seq < facts.next_entered_seq)
),

page_features as (
    select distinct journey_id, stage_order, 'page' as feature_kind,
        regexp_replace(page_url, '[?#].*$', '') as feature_value
    from touches_before_outcome
    where page_url is not null
),

top_pages as (
    select stage_order, feature_value
    from page_features
    group by stage_order, feature_value
    qualify row_number() over (
        partition by stage_order order by count(*) desc, feature_value
    ) <= 50
),

touch_features as (
    select journey_id, stage_order, 'touchpoint' as feature_kind,
        source || ': ' || event_name as feature_value
    from touches_before_outcome
    union all
    select journey_id, stage_order, 'channel' as feature_kind, channel as feature_value
    from touches_before_outcome
    where channel is not null
    union all
    select journey_id, stage_order, 'failed_call' as feature_kind, 'yes' as feature_value
    from touches_before_outcome
    where event_name in (select event_name from failed_call_events)
    union all
    select page_features.*
    from page_features
    inner join top_pages
        on top_pages.stage_order = page_features.stage_order
        and top_pages.feature_value = page_features.feature_value
),

journey_features as (
    select distinct journey_id, stage_order, feature_kind, feature_value
    from (select * from segment_features union all select * from touch_features)
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
        journey_features.stage_order,
        journey_features.feature_kind,
        journey_features.feature_value,
        count(*) filter (where facts.is_abandoned_here) as abandoned_with,
        count(*) filter (where facts.is_moved_on) as moved_on_with
    from journey_features
    inner join facts
        on facts.journey_id = journey_features.journey_id
        and facts.stage_order = journey_features.stage_order
    group by journey_features.stage_order, journey_features.feature_kind,
        journey_features.feature_value
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
