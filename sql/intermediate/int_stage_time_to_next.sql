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
with

facts as (
    select * from int_journey_stage_facts where is_km_at_risk
),

segments as (
    select * from int_journey_segments
),

grouped as (
    select
        segments.dimension,
        segments.segment_value,
        facts.stage_order,
        facts.km_duration_seconds as duration_seconds,
        facts.is_km_event
    from facts
    inner join segments on segments.journey_id = facts.journey_id
),

per_duration as (
    select
        dimension,
        segment_value,
        stage_order,
        duration_seconds,
        count(*) filter (where is_km_event) as event_count,
        count(*) as leaving_count
    from grouped
    group by dimension, segment_value, stage_order, duration_seconds
),

at_risk as (
    select
        *,
        sum(leaving_count) over (
            partition by dimension, segment_value, stage_order
            order by duration_seconds desc
            rows between unbounded preceding and current row
        ) as at_risk_count
    from per_duration
),

survival as (
    select
        *,
        sum(
            case
                when event_count < at_risk_count then ln(1 - event_count / at_risk_count)
                else 0
            end
        ) over cumulative as log_survival,
        max(case when event_count = at_risk_count then 1 else 0 end) over cumulative
            as has_reached_zero
    from at_risk
    window cumulative as (
        partition by dimension, segment_value, stage_order
        order by duration_seconds
        rows between unbounded preceding and current row
    )
),

survival_probability as (
    select
        *,
        case when has_reached_zero = 1 then 0.0 else exp(log_survival) end as survival_rate
    from survival
),

final as (
    select
        dimension,
        segment_value,
        stage_order,
        min(duration_seconds) filter (where event_count > 0 and survival_rate <= 0.5 + 1e-12)
            as time_to_next_median_seconds,
        min(duration_seconds) filter (where event_count > 0 and survival_rate <= 0.1 + 1e-12)
            as time_to_next_p90_seconds,
        cast(sum(event_count) as bigint) as time_to_next_observed_count,
        cast(sum(leaving_count) - sum(event_count) as bigint) as time_to_next_censored_count
    from survival_probability
    group by dimension, segment_value, stage_order
)

select * from final
