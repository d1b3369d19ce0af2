-- stage_history (this night's rows): one row per run and stage; key (run_id, stage).
-- The night's stage_funnel, stamped with the run id and as-of time; past nights are
-- appended from runs/<run_id>/stage_history.parquet by cjm_analytics.history.
with

funnel as (
    select * from stage_funnel
),

final as (
    select
        getvariable('run_id') as run_id,
        cast(getvariable('as_of') as timestamp) as as_of,
        stage,
        cast(stage_order as integer) as stage_order,
        cast(reached_count as bigint) as reached_count,
        cast(converted_count as bigint) as converted_count,
        cast(abandoned_count as bigint) as abandoned_count,
        cast(in_progress_count as bigint) as in_progress_count,
        cast(conversion_rate as double) as conversion_rate,
        cast(conversion_rate_low as double) as conversion_rate_low,
        cast(conversion_rate_high as double) as conversion_rate_high,
        cast(abandonment_rate as double) as abandonment_rate
    from funnel
)

select * from final order by stage_order
