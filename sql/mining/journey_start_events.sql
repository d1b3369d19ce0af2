-- The event names journeys start with.
-- Grain: one row per event_name that starts at least one journey. Key: event_name.
with starts as (
    select event_name from mining_log where is_journey_start
),

counted as (
    select event_name, count(*) as journey_count from starts group by event_name
),

final as (
    select event_name, journey_count, journey_count / sum(journey_count) over () as journey_share
    from counted
)

select * from final
