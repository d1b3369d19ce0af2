-- int_stage_last_touch_counts: per non-final stage, how many abandoned journeys had each
-- touchpoint last and how many movers had it just before entering the next stage; the
-- additive half of abandonment_last_touchpoints.
--
-- Grain: one row per (stage, source, event_name) that was the last touchpoint of at least
--   one abandoned journey or the last one before moving on. Key: (stage_order, source,
--   event_name); stage is stage_order's name.
-- Definitions: as abandonment_last_touchpoints (abandoned_journey_count,
--   moved_on_journey_count).
-- Additive (ADR 0109): sums of per-journey counts, a row exactly when a count is not zero;
--   the incremental night updates it by difference (incremental.ADDITIVE_MODELS).
with

facts as (
    select * from int_journey_stage_facts where not is_final_stage
),

journey_touchpoints as (
    select journey_id, touchpoint_seq, source, event_name from touchpoints
),

last_before_abandoning as (
    select facts.stage, facts.stage_order, facts.journey_id, 'abandoned' as outcome_kind,
        arg_max(journey_touchpoints.source, journey_touchpoints.touchpoint_seq) as source,
        arg_max(journey_touchpoints.event_name, journey_touchpoints.touchpoint_seq)
            as event_name
    from facts
    inner join journey_touchpoints on journey_touchpoints.journey_id = facts.journey_id
    where facts.is_abandoned_here
    group by facts.stage, facts.stage_order, facts.journey_id
),

last_before_moving_on as (
    select facts.stage, facts.stage_order, facts.journey_id, 'moved_on' as outcome_kind,
        journey_touchpoints.source, journey_touchpoints.event_name
    from facts
    inner join journey_touchpoints
        on journey_touchpoints.journey_id = facts.journey_id
        and journey_touchpoints.touchpoint_seq = facts.next_entered_seq - 1
    where facts.is_moved_on
),

last_touches as (
    select * from last_before_abandoning
    union all
    select * from last_before_moving_on
),

final as (
    select
        stage,
        stage_order,
        source,
        event_name,
        count(*) filter (where outcome_kind = 'abandoned') as abandoned_journey_count,
        count(*) filter (where outcome_kind = 'moved_on') as moved_on_journey_count
    from last_touches
    group by stage, stage_order, source, event_name
)

select * from final
