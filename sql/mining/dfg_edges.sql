-- Directly-follows graph at event level: how often one event name is directly followed by
-- another inside a journey, and how long that step takes. Times are exact microsecond
-- differences; medians and p90 interpolate (like pandas, so they equal pm4py's).
-- Grain: one row per (from_event_name, to_event_name). Key: both columns.
with journeys as (
    select steps from journey_steps
),

codes as (
    select event_name, event_code from mining_event_codes
),

pairs as (
    select unnest(steps[:len(steps) - 1]) as step, unnest(steps[2:]) as next_step from journeys
),

counted as (
    select
        step.event_code as from_code,
        next_step.event_code as to_code,
        count(*) as transition_count,
        avg((next_step.at_us - step.at_us) / 1e6) as mean_duration_seconds,
        median((next_step.at_us - step.at_us) / 1e6) as median_duration_seconds,
        quantile_cont((next_step.at_us - step.at_us) / 1e6, 0.9) as p90_duration_seconds
    from pairs
    group by all
),

final as (
    select
        from_event.event_name as from_event_name,
        to_event.event_name as to_event_name,
        counted.transition_count,
        counted.mean_duration_seconds,
        counted.median_duration_seconds,
        counted.p90_duration_seconds
    from counted
    join codes as from_event on from_event.event_code = counted.from_code
    join codes as to_event on to_event.event_code = counted.to_code
)

select * from final
