-- Report data: conversion of journeys that follow the designed map vs journeys that leave
-- it, overall and at each stage (from conformance_conversion), with the journeys per kind
-- of deviation (from deviations). One row per (scope, stage, path_group) of
-- conformance_conversion; key those three.
with

conversion as (
    select * from conformance_conversion
),

stage_positions as (
    select stage, stage_order from stage_funnel
),

final as (
    select
        conversion.scope,
        coalesce(conversion.stage, 'overall') as stage,
        coalesce(stage_positions.stage_order, 0) as stage_order,
        conversion.path_group,
        conversion.journey_count,
        conversion.converted_count,
        conversion.conversion_rate,
        conversion.conversion_rate_low,
        conversion.conversion_rate_high
    from conversion
    left join stage_positions using (stage)
)

select * from final order by stage_order, path_group
