-- int_stage_benchmark_segments: conversion of each transition per segment value known at
-- the stage, among journeys whose entry to the stage was observed: the candidates of the
-- constraint's benchmarks (cjm_analytics.constraint, ADR 0023).
--
-- Grain: one row per (non-final stage, dimension, segment value). Key: (stage_order,
--   dimension, segment_value).
-- Definitions: observed_reached_count = journeys with is_entry_observed at the stage and
--   this value at entry (int_stage_entry_segments); observed_converted_count = those that
--   moved on; observed_conversion_rate = converted / reached, with its Wilson 95% bounds.
-- The counts are int_stage_entry_segment_counts (additive, ADR 0109).
with

counts as (
    select * from int_stage_entry_segment_counts
),

rates as (
    select
        *,
        observed_converted_count / observed_reached_count as observed_conversion_rate,
        1.959963984540054 as z
    from counts
),

final as (
    select
        stage,
        stage_order,
        dimension,
        segment_value,
        observed_reached_count,
        observed_converted_count,
        observed_conversion_rate,
        greatest(0.0, (
            observed_conversion_rate + z * z / (2 * observed_reached_count)
            - z * sqrt(
                observed_conversion_rate * (1 - observed_conversion_rate) / observed_reached_count
                + z * z / (4 * observed_reached_count * observed_reached_count)
            )
        ) / (1 + z * z / observed_reached_count)) as observed_conversion_rate_low,
        least(1.0, (
            observed_conversion_rate + z * z / (2 * observed_reached_count)
            + z * sqrt(
                observed_conversion_rate * (1 - observed_conversion_rate) / observed_reached_count
                + z * z / (4 * observed_reached_count * observed_reached_count)
            )
        ) / (1 + z * z / observed_reached_count)) as observed_conversion_rate_high
    from rates
    order by stage_order, dimension, segment_value
)

select * from final
