-- int_stage_feature_counts: for every non-final stage, how many journeys of its drop-off
-- population held each feature, by outcome; the additive half of int_dropoff_feature_counts.
--
-- Grain: one row per (non-final stage, feature_kind, feature_value) held by at least one
--   journey of the stage's population, plus one row per non-final stage with a population
--   whose feature_kind and feature_value are NULL: the whole population (no feature).
--   Key: (stage_order, feature_kind, feature_value).
-- Population, features and "held at k": as int_dropoff_feature_counts defines them; every
--   page is counted here (that model keeps each stage's 50 most frequent). The population
--   is defined here only: int_dropoff_feature_counts reads its totals from the NULL rows.
-- abandoned_with / moved_on_with: journeys with the feature that abandoned at k / moved on
--   (on the NULL rows: every journey of the population that abandoned / moved on).
-- Additive (ADR 0109): each row is a sum over journeys of per-journey counts and exists
--   exactly when a count is not zero, so the incremental night updates it by the counts of
--   the customers it recomputes, tonight's minus last night's
--   (cjm_analytics.incremental.ADDITIVE_MODELS); it must not read as_of.
with

facts as (
    select journey_id, stage_order, next_entered_seq, is_abandoned_here, is_moved_on
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

segment_features as (
    select facts.stage_order, entry_segments.dimension as feature_kind,
        entry_segments.segment_value as feature_value, facts.is_abandoned_here, facts.is_moved_on
    from facts
    inner join entry_segments
        on entry_segments.journey_id = facts.journey_id
        and entry_segments.stage_order = facts.stage_order
),

population as (
    -- one row per (journey, stage) with no feature: the totals
    select stage_order, null::varchar as feature_kind, null::varchar as feature_value,
        is_abandoned_here, is_moved_on
    from facts
),
journey_features as (
    -- one row per (journey, stage, feature): the kinds never overlap and each part is unique
    select * from segment_features
    union all
    select * from touch_features
    union all
    select * from population
),

final as (
    select
        stage_order,
        feature_kind,
        feature_value,
        count(*) filter (where is_abandoned_here) as abandoned_with,
        count(*) filter (where is_moved_on) as moved_on_with
    from journey_features
    group by stage_order, feature_kind, feature_value
)

select * from final
