-- int_stage_group_counts: the stage funnel counts of every segment group; the additive half
-- of int_stage_group_metrics.
--
-- Grain: one row per (dimension, segment_value, stage_order) with at least one journey of
--   the group at the stage (int_stage_group_metrics fills the other stages with zeros).
-- Key: (dimension, segment_value, stage_order).
-- Definitions: as int_stage_group_metrics (counts over int_journey_stage_facts).
-- Additive (ADR 0109): sums of per-journey counts, a row exactly when a count is not zero;
--   the incremental night updates it by difference (incremental.ADDITIVE_MODELS).
with

facts as (
    select * from int_journey_stage_facts
),

segments as (
    select * from int_journey_segments
),

final as (
    select
        segments.dimension,
        segments.segment_value,
        facts.stage_order,
        count(*) as reached_count,
        count(*) filter (where facts.is_moved_on) as converted_count,
        count(*) filter (where facts.is_abandoned_here) as abandoned_count,
        count(*) filter (where facts.is_in_progress_here) as in_progress_count,
        count(*) filter (where facts.is_entry_observed) as observed_reached_count,
        count(*) filter (where facts.is_entry_observed and facts.is_moved_on)
            as observed_converted_count
    from facts
    inner join segments on segments.journey_id = facts.journey_id
    group by segments.dimension, segments.segment_value, facts.stage_order
)

select * from final
