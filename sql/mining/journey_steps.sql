-- The journey order, computed once: each journey's touchpoints as one list sorted by
-- touchpoint_seq. A hash aggregate plus a short sort inside each journey replaces a global
-- sort of all touchpoints; event names are integer codes (mining_event_codes), times are
-- epoch microseconds. Every other mining table takes its order from here.
-- Grain: one row per journey. Key: journey_id.
with source_touchpoints as (
    select journey_id, touchpoint_seq, event_name, event_at, stage_order from touchpoints
),

codes as (
    select event_name, event_code from mining_event_codes
),

coded as (
    select
        source_touchpoints.journey_id,
        source_touchpoints.touchpoint_seq,
        codes.event_code,
        epoch_us(source_touchpoints.event_at) as at_us,
        source_touchpoints.stage_order
    from source_touchpoints
    -- a touchpoint without an event name keeps its place (NULL has a code too)
    join codes on codes.event_name is not distinct from source_touchpoints.event_name
),

final as (
    select
        journey_id,
        list_sort(list({
            'seq': touchpoint_seq, 'event_code': event_code, 'at_us': at_us, 'stage_order': stage_order
        })) as steps
    from coded
    group by journey_id
)

select * from final
