-- int_journey_stage_entries: when each journey entered each stage, in both counting modes.
--
-- Grain: one row per journey (with at least one touchpoint) and configured stage.
-- Key: (journey_id, stage_order).
--
-- Definitions (positions are touchpoint_seq: event_at, then the tie-breakers of touchpoints):
--   first_touch_seq / _at: the journey's first touchpoint mapped to exactly this stage.
--   furthest mode: the journey entered stage k at its first touchpoint mapped to any stage
--     at or beyond k (a journey that reached purchase passed the stages before it, even
--     unobserved ones). furthest_entered_seq = min(first_touch_seq over stages >= k).
--   ordered mode: the journey entered stages 1..k in order. Stage 1 is entered at its first
--     touchpoint of stage 1; stage k+1 at its first touchpoint of stage k+1 that comes after
--     (higher touchpoint_seq than) the touchpoint where it entered stage k. A stage touched
--     only before that point does not count. This greedy chain is the earliest possible
--     embedding of stages 1..k as a subsequence, so it exists exactly when the journey holds
--     stages 1..k in order; it reproduces the `ordered_cases` of the reference figures of
--     the real logs in ../shared/data/real (BPI 2012, helpdesk, road traffic, sepsis...).
--   entered_seq / entered_at: the mode's entry, chosen by getvariable('funnel_mode');
--     NULL when the journey did not reach the stage in that mode.
with recursive

mapped_touchpoints as (
    select journey_id, touchpoint_seq, event_at, stage_order
    from touchpoints
    where stage_order is not null
),

stages as (
    select stage, stage_order from stage_definitions
),

journey_ids as (
    select distinct journey_id from touchpoints
),

first_touches as (
    select
        journey_id,
        stage_order,
        min(touchpoint_seq) as first_touch_seq,
        min(event_at) as first_touch_at
    from mapped_touchpoints
    group by journey_id, stage_order
),

ordered_chain(journey_id, stage_order, entered_seq, entered_at) as (
    -- entered_at rides along (touchpoint_seq is unique in a journey): no join back
    select journey_id, 1, min(touchpoint_seq), arg_min(event_at, touchpoint_seq)
    from mapped_touchpoints
    where stage_order = 1
    group by journey_id
    union all
    select
        ordered_chain.journey_id,
        ordered_chain.stage_order + 1,
        min(mapped_touchpoints.touchpoint_seq),
        arg_min(mapped_touchpoints.event_at, mapped_touchpoints.touchpoint_seq)
    from ordered_chain
    inner join mapped_touchpoints
        on mapped_touchpoints.journey_id = ordered_chain.journey_id
        and mapped_touchpoints.stage_order = ordered_chain.stage_order + 1
        and mapped_touchpoints.touchpoint_seq > ordered_chain.entered_seq
    group by ordered_chain.journey_id, ordered_chain.stage_order
),

ordered_entries as (
    select journey_id, stage_order, entered_seq, entered_at from ordered_chain
),

journey_stage_grid as (
    select journey_ids.journey_id, stages.stage, stages.stage_order
    from journey_ids
    cross join stages
),

later_first_touches as (
    -- furthest entry of k: the earliest first touch of any stage at or beyond k (a join to
    -- the few stages and a hash aggregate instead of a window sorted by journey_id)
    select
        first_touches.journey_id,
        stages.stage_order,
        min(first_touches.first_touch_seq) as furthest_entered_seq,
        min(first_touches.first_touch_at) as furthest_entered_at
    from first_touches
    inner join stages on stages.stage_order <= first_touches.stage_order
    group by first_touches.journey_id, stages.stage_order
),

furthest_entries as (
    select
        journey_stage_grid.*,
        first_touches.first_touch_seq,
        first_touches.first_touch_at,
        later_first_touches.furthest_entered_seq,
        later_first_touches.furthest_entered_at
    from journey_stage_grid
    left join first_touches
        on first_touches.journey_id = journey_stage_grid.journey_id
        and first_touches.stage_order = journey_stage_grid.stage_order
    left join later_first_touches
        on later_first_touches.journey_id = journey_stage_grid.journey_id
        and later_first_touches.stage_order = journey_stage_grid.stage_order
),

final as (
    select
        furthest_entries.journey_id,
        furthest_entries.stage,
        cast(furthest_entries.stage_order as integer) as stage_order,
        furthest_entries.first_touch_seq,
        furthest_entries.first_touch_at,
        furthest_entries.furthest_entered_seq,
        furthest_entries.furthest_entered_at,
        ordered_entries.entered_seq as ordered_entered_seq,
        ordered_entries.entered_at as ordered_entered_at,
        case getvariable('funnel_mode')
            when 'ordered' then ordered_entries.entered_seq
            else furthest_entries.furthest_entered_seq
        end as entered_seq,
        case getvariable('funnel_mode')
            when 'ordered' then ordered_entries.entered_at
            else furthest_entries.furthest_entered_at
        end as entered_at
    from furthest_entries
    left join ordered_entries
        on ordered_entries.journey_id = furthest_entries.journey_id
        and ordered_entries.stage_order = furthest_entries.stage_order
)

select * from final
