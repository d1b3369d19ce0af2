-- Report data: time in stage of journeys that moved on (first touchpoint of a stage to the
-- first touchpoint of the next stage they reached), at most $1 journeys per stage (a fixed
-- hash sample). Open journeys are censored and not shown here: the Kaplan-Meier median of
-- stage_funnel is the number to quote. One row per journey and stage; key (journey_id, stage).
with

touchpoints as (
    select journey_id, stage, stage_order, event_at from touchpoints where stage is not null
),

stage_entries as (
    select journey_id, stage, stage_order, min(event_at) as entered_at
    from touchpoints
    group by all
),

next_entries as (
    select
        journey_id,
        stage,
        stage_order,
        entered_at,
        lead(entered_at) over (partition by journey_id order by stage_order) as next_entered_at
    from stage_entries
),

durations as (
    select
        journey_id,
        stage,
        stage_order,
        epoch(next_entered_at) - epoch(entered_at) as time_in_stage_seconds
    from next_entries
    where next_entered_at is not null and next_entered_at >= entered_at
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
