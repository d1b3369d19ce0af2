-- int_segment_journey_counts: how many journeys each segment group has.
--
-- Grain: one row per (dimension, segment_value) in int_journey_segments.
-- Key: (dimension, segment_value).
-- (journey_id, dimension, segment_value) is the key of int_journey_segments, so count(*)
--   counts distinct journeys without a DISTINCT over a million rows (ADR 0076).
-- Additive (ADR 0109): a sum of per-journey counts, updated by difference in the incremental
--   night (incremental.ADDITIVE_MODELS).
with

segments as (
    select * from int_journey_segments
),

final as (
    select dimension, segment_value, count(*) as journey_count
    from segments
    group by dimension, segment_value
)

select * from final
