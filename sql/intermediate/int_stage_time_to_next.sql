-- int_stage_time_to_next: Kaplan-Meier quantiles of the time from entering a stage to
-- entering the next one, per segment group.
--
-- Grain: one row per (dimension, segment_value, stage_order) with at least one journey at
--   risk. Key: (dimension, segment_value, stage_order).
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
-- Cost (ADR 0076, 0105): each (dimension, segment_value) is numbered, so the windows
--   partition and sort by integers; the number at risk is a rank (no running sum), and the
--   survival product runs over the durations with events only: two sorts, one running sum.
with

facts as (
    select * from int_journey_stage_facts where is_km_at_risk
),

segments as (
    select * from int_journey_segments
),

segment_groups as (
    -- an integer per (dimension, segment_value) group: windows sort integers, not strings
    select dimension, segment_value, row_number() over () as group_id
    from (select distinct dimension, segment_value from segments)
),

grouped as (
    select
        segment_groups.group_id,
        facts.stage_order,
        -- movers: the time to the next stage; in progress: censored at as_of - entered_at
        coalesce(
            facts.time_to_next_seconds,
            greatest(epoch(getvariable('as_of')) - epoch(facts.entered_at), 0)
        ) as duration_seconds,
        facts.is_km_event
    from facts
    inner join segments on segments.journey_id = facts.journey_id
    inner join segment_groups
        on segment_groups.dimension = segments.dimension
        and segment_groups.segment_value = segments.segment_value
),

ranked as (
    -- at risk at t: the group's journeys minus those that left before t, i.e. minus
    -- (rank - 1) in ascending duration (rank is one sort with no running sum)
    select
        *,
        count(*) over (partition by group_id, stage_order)
            - rank() over (partition by group_id, stage_order order by duration_seconds)
            + 1 as at_risk_count
    from grouped
),

per_duration as (
    select
        group_id,
        stage_order,
        duration_seconds,
        count(*) filter (where is_km_event) as event_count,
        count(*) as leaving_count,
        min(at_risk_count) as at_risk_count
    from ranked
    group by group_id, stage_order, duration_seconds
),

survival as (
    -- S(t) changes only at durations with events, so only those rows are multiplied; when
    -- every journey at risk moves on at t (d = n), no journey is left after t: t is the
    -- group's last duration and S(t) = 0
    select
        group_id,
        stage_order,
        duration_seconds,
        case
            when event_count = at_risk_count then 0.0
            else exp(sum(ln(1 - event_count / at_risk_count)) over (
                partition by group_id, stage_order
                order by duration_seconds
                rows between unbounded preceding and current row
            ))
        end as survival_rate
    from per_duration
    where event_count > 0
),

quantiles as (
    select
        group_id,
        stage_order,
        min(duration_seconds) filter (where survival_rate <= 0.5 + 1e-12)
            as time_to_next_median_seconds,
        min(duration_seconds) filter (where survival_rate <= 0.1 + 1e-12)
            as time_to_next_p90_seconds
    from survival
    group by group_id, stage_order
),

group_quantiles as (
    select
        per_duration.group_id,
        per_duration.stage_order,
        any_value(quantiles.time_to_next_median_seconds) as time_to_next_median_seconds,
        any_value(quantiles.time_to_next_p90_seconds) as time_to_next_p90_seconds,
        cast(sum(per_duration.event_count) as bigint) as time_to_next_observed_count,
        cast(sum(per_duration.leaving_count) - sum(per_duration.event_count) as bigint)
            as time_to_next_censored_count
    from per_duration
    left join quantiles
        on quantiles.group_id = per_duration.group_id
        and quantiles.stage_order = per_duration.stage_order
    group by per_duration.group_id, per_duration.stage_order
),

final as (
    select
        segment_groups.dimension,
        segment_groups.segment_value,
        group_quantiles.stage_order,
        group_quantiles.time_to_next_median_seconds,
        group_quantiles.time_to_next_p90_seconds,
        group_quantiles.time_to_next_observed_count,
        group_quantiles.time_to_next_censored_count
    from group_quantiles
    inner join segment_groups on segment_groups.group_id = group_quantiles.group_id
)

select * from final
