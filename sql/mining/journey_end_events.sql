-- The event names journeys end with (so far, for journeys still in progress).
-- Grain: one row per event_name that ends at least one journey. Key: event_name.
with ends as (
    select event_name from mining_log where is_journey_end
),

counted as (
    select event_name, count(*) as journey_count from ends group by event_name
),

final as (
    select event_name, journey_count, journey_count / sum(journey_count) over () as journey_share
    from counted
)

select * from final
