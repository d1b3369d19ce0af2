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
-- The counts are int_stage_last_touch_counts (additive, ADR 0109).
with

facts as (
    select * from int_journey_stage_facts where not is_final_stage
),

counted as (
    select * from int_stage_last_touch_counts
),

totals as (
    select
        stage_order,
        count(*) filter (where is_abandoned_here) as abandoned_total,
        count(*) filter (where is_moved_on) as moved_on_total
    from facts
    group by stage_order
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
