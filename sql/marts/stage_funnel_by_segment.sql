-- stage_funnel_by_segment: the journey funnel per segment value, channel and cohort week.
--
-- Grain: one row per (dimension, segment_value, stage). Key: (dimension, segment_value,
--   stage_order).
--
-- Dimensions and values: sql/intermediate/int_journey_segments.sql (the `segments:` of
-- journey.yaml, plus 'channel' - overlapping groups: a journey counts in every channel it
-- used - and 'cohort_week'). Columns: as stage_funnel (int_stage_group_metrics.sql), plus
-- journey_count = journeys in the group.
with

segment_groups as (
    select * from int_stage_group_metrics where dimension <> 'all'
),

final as (
    select *
    from segment_groups
    order by dimension, segment_value, stage_order
)

select * from final
