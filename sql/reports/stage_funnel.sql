-- Report data: the stage funnel. One row per stage; key stage.
with

funnel as (
    select * from stage_funnel
),

final as (
    select
        stage,
        stage_order,
        reached_count,
        converted_count,
        abandoned_count,
        in_progress_count,
        conversion_rate,
        conversion_rate_low,
        conversion_rate_high,
        abandonment_rate
    from funnel
)

select * from final order by stage_order
