-- Report data: conversion of each stage over the recorded nights.
-- One row per run and stage; key (run_id, stage).
with

history as (
    select * from stage_history
),

final as (
    select
        run_id,
        as_of,
        stage,
        stage_order,
        reached_count,
        conversion_rate,
        conversion_rate_low,
        conversion_rate_high,
        abandonment_rate
    from history
    where conversion_rate is not null
)

select * from final order by as_of, run_id, stage_order
