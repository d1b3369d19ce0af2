-- Directly-follows graph at stage level: how often a stage visit is directly followed by a
-- visit of another stage, and the time between entering the two.
-- Grain: one row per (from_stage, to_stage). Key: both columns.
with steps as (
    select stage, next_stage, seconds_to_next_stage
    from mining_stage_log
    where next_stage is not null
),

final as (
    select
        stage as from_stage,
        next_stage as to_stage,
        count(*) as transition_count,
        avg(seconds_to_next_stage) as mean_duration_seconds,
        median(seconds_to_next_stage) as median_duration_seconds,
        quantile_cont(seconds_to_next_stage, 0.9) as p90_duration_seconds
    from steps
    group by all
)

select * from final
