-- abandonment_last_touchpoints: the pain points: touchpoints most often last before a
-- journey was abandoned, per stage, against the same share among journeys that moved on.
--
-- Grain: one row per (stage, source, event_name) that was the last touchpoint of at least
--   one abandoned journey or the last one before moving on. Key: (stage_order, source,
--   event_name).
-- Definitions, for a non-final stage k:
--   abandoned journeys at k (int_journey_stage_facts.is_abandoned_here): their last
--     touchpoint overall (highest touchpoint_seq);
--   journeys that moved on from k: the touchpoint just before the one where they entered
--     k+1 (none when that entry was their first touchpoint);
--   abandoned_share_rate = abandoned journeys with this last touchpoint / abandoned at k;
--   moved_on_share_rate likewise among movers; lift = abandoned / moved-on share (NULL when
--     no mover had it); abandoned_rank = 1 for the most frequent last touchpoint.
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

totals as (
    select
        stage_order,
        count(*) filter (where is_abandoned_here) as abandoned_total,
        count(*) filter (where is_moved_on) as moved_on_total
    from facts
    group by stage_order
),

counted as (
    select
        stage,
        stage_order,
        source,
        event_name,
        count(*) filter (where outcome_kind = 'abandoned') as abandoned_journey_count,
        count(*) filter (where outcome_kind = 'moved_on') as moved_on_journey_count
    from last_touches
    group by stage, stage_order, source, event_name
),

final as (
    select
        counted.stage,
        counted.stage_order,
        counted.source,
        counted.event_name,
        counted.abandoned_journey_count,
        counted.abandoned_journey_count / nullif(totals.abandoned_total, 0)
            as abandoned_share_rate,
        counted.moved_on_journey_count,
        counted.moved_on_journey_count / nullif(totals.moved_on_total, 0)
            as moved_on_share_rate,
        (counted.abandoned_journey_count / nullif(totals.abandoned_total, 0))
            / nullif(counted.moved_on_journey_count / nullif(totals.moved_on_total, 0), 0)
            as lift,
        row_number() over (
            partition by counted.stage_order
            order by counted.abandoned_journey_count desc, counted.source, counted.event_name
        ) as abandoned_rank
    from counted
    inner join totals on totals.stage_order = counted.stage_order
    order by counted.stage_order, abandoned_rank
)

select * from final
