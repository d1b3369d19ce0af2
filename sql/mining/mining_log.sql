-- Mining log, event level: the touchpoints in journey order (from journey_steps), each with
-- the touchpoint that directly follows it in the same journey.
-- Grain: one row per touchpoint. Key: (journey_id, touchpoint_seq).
with journeys as (
    select journey_id, steps from journey_steps
),

codes as (
    select event_name, event_code from mining_event_codes
),

stage_names as (
    select stage, stage_order from designed_stages
),

unnested as (
    select
        journey_id,
        unnest(steps) as step,
        unnest(steps[2:]) as next_step,  -- the shorter list is padded with NULL
        generate_subscripts(steps, 1) as position,
        len(steps) as step_count
    from journeys
),

final as (
    select
        unnested.journey_id,
        unnested.step.seq as touchpoint_seq,
        this_event.event_name,
        make_timestamp(unnested.step.at_us) as event_at,
        stage_names.stage,
        unnested.step.stage_order,
        unnested.position = 1 as is_journey_start,
        unnested.position = unnested.step_count as is_journey_end,
        next_event.event_name as next_event_name,
        make_timestamp(unnested.next_step.at_us) as next_event_at,
        (unnested.next_step.at_us - unnested.step.at_us) / 1e6 as seconds_to_next
    from unnested
    join codes as this_event on this_event.event_code = unnested.step.event_code
    left join codes as next_event on next_event.event_code = unnested.next_step.event_code
    left join stage_names on stage_names.stage_order = unnested.step.stage_order
)

select * from final
