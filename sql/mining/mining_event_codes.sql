-- Event names as small integer codes: the per-journey lists and the directly-follows pairs
-- are sorted and grouped as integers, and names come back only on the small results.
-- Grain: one row per distinct event name. Key: event_name (and event_code).
with names as (
    select distinct event_name from touchpoints
),

final as (
    select event_name, (row_number() over (order by event_name))::integer as event_code
    from names
)

select * from final
