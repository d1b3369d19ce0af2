-- int_dropoff_feature_counts: 2x2 counts of journey features against abandoning a stage,
-- the input of the dropoff_drivers mart (odds ratios and tests: cjm_analytics.drivers).
--
-- Grain: one row per (non-final stage, feature_kind, feature_value) held by at least
--   getvariable('dropoff_min_journeys') journeys of that stage's population.
-- Key: (stage_order, feature_kind, feature_value).
-- Population at stage k: journeys that moved on from k or abandoned at k (in-progress
--   journeys are left out: their outcome is not known yet).
-- Features of a journey at stage k (each counted once per journey):
--   segment dimensions of int_journey_segments except 'all' and 'cohort_week'
--     (feature_kind = the dimension, e.g. device = 'mobile'; channel = every channel used);
--   feature_kind 'touchpoint' (source: event name), 'page' (page_url without query or
--     fragment) and 'failed_call' (value 'yes': an event in emotion.failed_call_events),
--     taken from the journey's touchpoints before it entered k+1 (movers) or from all its
--     touchpoints (abandoners), so what happened after moving on cannot explain staying.
-- Counts: abandoned_with / moved_on_with = journeys with the feature that abandoned at k /
--   moved on; abandoned_total / moved_on_total = the whole population at k.
with

facts as (
    select * from int_journey_stage_facts
    where not is_final_stage and (is_moved_on or is_abandoned_here)
),

segments as (
    select * from int_journey_segments where dimension not in ('all', 'cohort_week')
),

journey_touchpoints as (
    select journey_id, touchpoint_seq, source, event_name, page_url from touchpoints
),

failed_call_events as (
    select value as event_name from emotion_event_kinds where kind = 'failed_call'
),

segment_features as (
    select facts.journey_id, facts.stage_order, segments.dimension as feature_kind,
        segments.segment_value as feature_value
    from facts
    inner join segments on segments.journey_id = facts.journey_id
),

touches_before_outcome as (
    select facts.journey_id, facts.stage_order, journey_touchpoints.*
        exclude (journey_id, touchpoint_seq)
    from facts
    inner join journey_touchpoints
        on journey_touchpoints.journey_id = facts.journey_id
        and (facts.is_abandoned_here or journey_touchpoints.touchpoint_seq < facts.next_entered_seq)
),

touch_features as (
    select journey_id, stage_order, 'touchpoint' as feature_kind,
        source || ': ' || event_name as feature_value
    from touches_before_outcome
    union all
    select journey_id, stage_order, 'page' as feature_kind,
        regexp_replace(page_url, '[?#].*$', '') as feature_value
    from touches_before_outcome
    where page_url is not null
    union all
    select journey_id, stage_order, 'failed_call' as feature_kind, 'yes' as feature_value
    from touches_before_outcome
    where event_name in (select event_name from failed_call_events)
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
