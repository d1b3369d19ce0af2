-- int_stage_entry_segment_counts: per non-final stage and segment value known at entry,
-- the journeys whose entry was observed and those of them that moved on; the additive half
-- of int_stage_benchmark_segments.
--
-- Grain: one row per (non-final stage, dimension, segment value) with at least one such
--   journey. Key: (stage_order, dimension, segment_value); stage is stage_order's name.
-- Definitions: as int_stage_benchmark_segments.
-- Additive (ADR 0109): sums of per-journey counts, a row exactly when a count is not zero;
--   the incremental night updates it by difference (incremental.ADDITIVE_MODELS).
with

facts as (
    select * from int_journey_stage_facts where not is_final_stage and is_entry_observed
),

entry_segments as (
    select * from int_stage_entry_segments
),

final as (
    select
        facts.stage,
        facts.stage_order,
        entry_segments.dimension,
        entry_segments.segment_value,
        count(*) as observed_reached_count,
        count(*) filter (where facts.is_moved_on) as observed_converted_count
    from facts
    inner join entry_segments
        on entry_segments.journey_id = facts.journey_id
        and entry_segments.stage_order = facts.stage_order
    group by facts.stage, facts.stage_order, entry_segments.dimension,
        entry_segments.segment_value
)

select * from final
