-- int_stage_time_to_next: Kaplan-Meier quantiles of the time from entering a stage to
-- entering the next one, per segment group.
--
-- Grain: one row per (dimension, segment_value, stage_order) with at least one journey at
--   risk. Key: (dimension, segment_value, stage_order). Columns: dimension, segment_value,
--   stage_order, time_to_next_median_seconds, time_to_next_p90_seconds,
--   time_to_next_observed_count, time_to_next_censored_count.
--
-- Materialized in Python (ADR 0121): this query returns the estimator's input, and
-- cjm_analytics.journeys.materialize_time_to_next computes the table from it with
-- cjm_analytics.stats.kaplan_meier_groups (numpy). The estimate needs each group's
-- durations in order; in SQL that was two window sorts of every (group, fact) row (about
-- 13.6M at 10M events). Here the facts are sorted once; each group's facts are a
-- subsequence of that order.
--
-- Definitions (input from int_journey_stage_facts, ADR 0022): movers are events at
--   time_to_next_seconds; in-progress journeys are censored at as_of - entered_at;
--   abandoned journeys are not at risk (excluded).
--   At each distinct duration t: n(t) = journeys with duration >= t (at risk), d(t) = movers
--   with duration = t; S(t) = product over t_i <= t of (1 - d(t_i) / n(t_i)) (censored at t
--   count as at risk at t, events first).
--   median = smallest t with S(t) <= 0.5; p90 = smallest t with S(t) <= 0.1; NULL when S
--   never falls that low (fewer than half / 90% observed to move on: the stage takes
--   longer than the data can tell yet; never replaced by the movers' plain median).
--
-- Rows returned (two kinds, told apart by group_id):
--   a fact at risk: stage_order, duration_seconds, is_km_event, group_ids (the segment
--     groups of its journey), group_id NULL; in order of (stage_order, duration_seconds);
--   then a segment group: group_id, dimension, segment_value, the rest NULL.
with

facts as (
    select * from int_journey_stage_facts where is_km_at_risk
),

segments as (
    select * from int_journey_segments
),

segment_groups as (
    -- an integer per (dimension, segment_value) group
    select dimension, segment_value, cast(row_number() over () - 1 as integer) as group_id
    from (select distinct dimension, segment_value from segments)
),

journey_groups as (
    select segments.journey_id, list(segment_groups.group_id) as group_ids
    from segments
    inner join segment_groups
        on segment_groups.dimension = segments.dimension
        and segment_groups.segment_value = segments.segment_value
    group by segments.journey_id
),

fact_rows as (
    select
        facts.stage_order,
        -- movers: the time to the next stage; in progress: censored at as_of - entered_at
        coalesce(
            facts.time_to_next_seconds,
            greatest(epoch(getvariable('as_of')) - epoch(facts.entered_at), 0)
        ) as duration_seconds,
        facts.is_km_event,
        journey_groups.group_ids,
        null::integer as group_id,
        null::varchar as dimension,
        null::varchar as segment_value
    from facts
    inner join journey_groups on journey_groups.journey_id = facts.journey_id
),

group_rows as (
    select
        null::integer as stage_order,
        null::double as duration_seconds,
        null::boolean as is_km_event,
        null::integer[] as group_ids,
        group_id,
        dimension,
        segment_value
    from segment_groups
),

final as (
    select * from fact_rows
    union all
    select * from group_rows
)

select * from final order by stage_order nulls last, duration_seconds
