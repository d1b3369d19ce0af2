-- The event names journeys end with (so far, for journeys still in progress).
-- Grain: one row per event_name that ends at least one journey. Key: event_name.
with journeys as (
    select steps[-1].event_code as event_code from journey_steps
),

codes as (
    select event_name, event_code from mining_event_codes
),

counted as (
    select event_code, count(*) as journey_count from journeys group by event_code
),

final as (
    select
        codes.event_name,
        counted.journey_count,
        counted.journey_count / sum(counted.journey_count) over () as journey_share
    from counted
    join codes using (event_code)
)

select * from final
