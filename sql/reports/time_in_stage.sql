-- Report data: time in stage of journeys that moved on: from entering a stage to entering
-- the next one, as int_journey_stage_facts counts it (the movers' durations that the
-- Kaplan-Meier median of stage_funnel is taken over, in the configured funnel mode; ADR
-- 0120), at most $1 journeys per stage (a fixed hash sample). Open journeys are censored
-- and not shown here: the Kaplan-Meier median of stage_funnel is the number to quote. One
-- row per journey and stage; key (journey_id, stage).
with

durations as (
    select journey_id, stage, stage_order, time_to_next_seconds as time_in_stage_seconds
    from int_journey_stage_facts
    where time_to_next_seconds is not null
),

sampled as (
    -- the $1 journeys of each stage with the smallest (hash, journey_id): a bounded heap per
    -- stage, not a sort of all its journeys (min_by needs n >= 1: $1 = 0 keeps no row)
    select unnest(min_by(durations, (hash(journey_id), journey_id), greatest($1, 1))) as picked
    from durations
    where $1 > 0
    group by stage
),

final as (
    select unnest(picked) from sampled
)

select * from final order by stage_order, journey_id
