-- Report data: the emotion line (stage_sentiment). One row per stage; key stage.
with

sentiment as (
    select * from stage_sentiment
),

final as (
    select
        stage,
        stage_order,
        csat_avg as csat_mean,
        csat_count,
        nps_avg as nps_mean,
        nps_count,
        failed_call_rate,
        call_count,
        negative_outcome_rate,
        outcome_count
    from sentiment
)

select * from final order by stage_order
