-- Report data: conversion to the next stage per segment value (stage_funnel_by_segment),
-- cohort weeks left out (they are the trend, not a segment), groups with fewer than ?
-- journeys reaching the stage left out. One row per (segment, segment_value, stage).
with

by_segment as (
    select * from stage_funnel_by_segment
),

final as (
    select
        dimension as segment,
        cast(segment_value as varchar) as segment_value,
        stage,
        stage_order,
        reached_count,
        conversion_rate,
        conversion_rate_low,
        conversion_rate_high
    from by_segment
    where dimension <> 'cohort_week'
        and conversion_rate is not null
        and reached_count >= ?
)

select * from final order by segment, segment_value, stage_order
