-- Mining log, stage level: consecutive touchpoints of one stage form one stage visit
-- (touchpoints no stage rule maps are skipped); each visit carries the visit after it.
-- Grain: one row per stage visit. Key: (journey_id, stage_visit_seq).
with visits as (
    select journey_id, touchpoint_seq, stage, stage_order, event_at as entered_at
    from mining_log
    where is_stage_visit_start
),

ordered as (
    select
        *,
        row_number() over journey_order as stage_visit_seq,
        lead(stage) over journey_order as next_stage,
        lead(entered_at) over journey_order as next_entered_at
    from visits
    window journey_order as (partition by journey_id order by touchpoint_seq)
),

final as (
    select
        journey_id,
        stage_visit_seq,
        touchpoint_seq as first_touchpoint_seq,
        stage,
        stage_order,
        entered_at,
        next_stage,
        next_entered_at,
        (epoch_us(next_entered_at) - epoch_us(entered_at)) / 1e6 as seconds_to_next_stage
    from ordered
)

select * from final
