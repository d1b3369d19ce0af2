-- Directly-follows graph at event level: how often one event name is directly followed by
-- another inside a journey, and how long that step takes. Medians interpolate (like pandas).
-- Grain: one row per (from_event_name, to_event_name). Key: both columns.
with steps as (
    select event_name, next_event_name, seconds_to_next
    from mining_log
    where not is_journey_end
),

final as (
    select
        event_name as from_event_name,
        next_event_name as to_event_name,
        count(*) as transition_count,
        avg(seconds_to_next) as mean_duration_seconds,
        median(seconds_to_next) as median_duration_seconds,
        quantile_cont(seconds_to_next, 0.9) as p90_duration_seconds
    from steps
    group by all
)

select * from final
