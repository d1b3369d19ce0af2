-- stage_funnel: the journey funnel of all journeys, one row per stage.
--
-- Grain: one row per configured stage. Key: stage_order (also stage).
--
-- Every column is defined in sql/intermediate/int_stage_group_metrics.sql (and the
-- docstring of cjm_analytics.journeys): reached, converted (= moved on to the next stage),
-- abandoned (stopped here, last touchpoint older than the abandonment timeout), in
-- progress (stopped here, recent), conversion_rate with Wilson 95% bounds,
-- abandonment_rate, Kaplan-Meier median / p90 time to the next stage with in-progress
-- journeys censored. reached = converted + abandoned + in progress at non-final stages.
-- observed_*: the same among journeys whose entry to the stage was a touchpoint of the
-- stage itself (furthest mode counts skipped stages as passed): the constraint's basis.
with

all_journeys as (
    select * from int_stage_group_metrics where dimension = 'all'
),

final as (
    select * exclude (dimension, segment_value)
    from all_journeys
    order by stage_order
)

select * from final
