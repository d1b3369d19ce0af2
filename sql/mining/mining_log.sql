-- Mining log, event level: the touchpoints in journey order, each with the touchpoint that
-- directly follows it in the same journey. The journey order is computed here once (one
-- window pass, all window functions share it) and every mining table reuses it.
-- Grain: one row per touchpoint. Key: (journey_id, touchpoint_seq).
with source_touchpoints as (
    select journey_id, touchpoint_seq, event_name, event_at, stage, stage_order, channel
    from touchpoints
),

ordered as (
    select
        *,
        lag(touchpoint_seq) over journey_order is null as is_journey_start,
        lead(touchpoint_seq) over journey_order is null as is_journey_end,
        lead(event_name) over journey_order as next_event_name,
        lead(event_at) over journey_order as next_event_at,
        lag(stage ignore nulls) over journey_order as previous_stage,
        lag(stage_order ignore nulls) over journey_order as previous_stage_order
    from source_touchpoints
    window journey_order as (partition by journey_id order by touchpoint_seq)
),

final as (
    select
        journey_id,
        touchpoint_seq,
        event_name,
        event_at,
        stage,
        stage_order,
        channel,
        is_journey_start,
        is_journey_end,
        next_event_name,
        next_event_at,
        -- exact to the microsecond: integer difference first, then seconds
        (epoch_us(next_event_at) - epoch_us(event_at)) / 1e6 as seconds_to_next,
        previous_stage,
        stage is not null and stage is distinct from previous_stage as is_stage_visit_start,
        stage_order < previous_stage_order as is_step_back
    from ordered
)

select * from final
