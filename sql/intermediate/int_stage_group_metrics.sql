-- int_stage_group_metrics: the stage funnel of every segment group (and of all journeys).
--
-- Grain: one row per (dimension, segment_value, stage) for every group in
--   int_journey_segments and every configured stage (zeros where nobody reached it).
-- Key: (dimension, segment_value, stage_order).
--
-- Definitions (counting mode = getvariable('funnel_mode'), see int_journey_stage_entries):
--   reached_count(k): journeys that reached stage k (furthest mode: furthest stage >= k;
--     ordered mode: stages 1..k touched in order).
--   converted_count(k) = reached_count(k+1): journeys that moved on to k+1.
--   abandoned_count(k), in_progress_count(k): journeys that stopped at k, stale / not stale
--     (int_journey_stage_facts); reached = converted + abandoned + in progress at every
--     non-final stage. At the final stage these and the rates are NULL.
--   conversion_rate = converted / reached with a Wilson score 95% interval (z = 1.959964):
--     (p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).
--   abandonment_rate = abandoned / reached; in_progress_rate = in progress / reached.
--   reached_from_first_rate = reached(k) / reached(1) of the same group.
--   time_to_next_*: Kaplan-Meier quantiles from int_stage_time_to_next.
--   observed_reached_count / observed_converted_count: the same counts among journeys whose
--     entry to k was observed (int_journey_stage_facts.is_entry_observed), with
--     observed_conversion_rate and its Wilson bounds: the basis of the constraint's
--     benchmarks (ADR 0023).
-- The counts are int_stage_group_counts and int_segment_journey_counts (additive, ADR 0109).
with

stages as (
    select * from stage_definitions
),

time_to_next as (
    select * from int_stage_time_to_next
),

groups as (
    select * from int_segment_journey_counts
),

counts as (
    select * from int_stage_group_counts
),

grid as (
    select
        groups.dimension,
        groups.segment_value,
        groups.journey_count,
        stages.stage,
        stages.stage_order,
        stages.is_success_stage,
        stages.is_final_stage,
        coalesce(counts.reached_count, 0) as reached_count,
        case when not stages.is_final_stage then coalesce(counts.converted_count, 0) end
            as converted_count,
        case when not stages.is_final_stage then coalesce(counts.abandoned_count, 0) end
            as abandoned_count,
        case when not stages.is_final_stage then coalesce(counts.in_progress_count, 0) end
            as in_progress_count,
        coalesce(counts.observed_reached_count, 0) as observed_reached_count,
        case when not stages.is_final_stage then coalesce(counts.observed_converted_count, 0) end
            as observed_converted_count
    from groups
    cross join stages
    left join counts
        on counts.dimension = groups.dimension
        and counts.segment_value = groups.segment_value
        and counts.stage_order = stages.stage_order
),

rates as (
    select
        *,
        case when reached_count > 0 then converted_count / reached_count end as conversion_rate,
        case when reached_count > 0 then abandoned_count / reached_count end as abandonment_rate,
        case when reached_count > 0 then in_progress_count / reached_count end
            as in_progress_rate,
        case when observed_reached_count > 0 then observed_converted_count / observed_reached_count end
            as observed_conversion_rate,
        1.959963984540054 as z
    from grid
),

wilson as (
    select
        *,
        case
            when conversion_rate is not null then greatest(0.0, (
                conversion_rate + z * z / (2 * reached_count)
                - z * sqrt(
                    conversion_rate * (1 - conversion_rate) / reached_count
                    + z * z / (4 * reached_count * reached_count)
                )
            ) / (1 + z * z / reached_count))
        end as conversion_rate_low,
        case
            when conversion_rate is not null then least(1.0, (
                conversion_rate + z * z / (2 * reached_count)
                + z * sqrt(
                    conversion_rate * (1 - conversion_rate) / reached_count
                    + z * z / (4 * reached_count * reached_count)
                )
            ) / (1 + z * z / reached_count))
        end as conversion_rate_high,
        case
            when observed_conversion_rate is not null then greatest(0.0, (
                observed_conversion_rate + z * z / (2 * observed_reached_count)
                - z * sqrt(
                    observed_conversion_rate * (1 - observed_conversion_rate)
                    / observed_reached_count
                    + z * z / (4 * observed_reached_count * observed_reached_count)
                )
            ) / (1 + z * z / observed_reached_count))
        end as observed_conversion_rate_low,
        case
            when observed_conversion_rate is not null then least(1.0, (
                observed_conversion_rate + z * z / (2 * observed_reached_count)
                + z * sqrt(
                    observed_conversion_rate * (1 - observed_conversion_rate)
                    / observed_reached_count
                    + z * z / (4 * observed_reached_count * observed_reached_count)
                )
            ) / (1 + z * z / observed_reached_count))
        end as observed_conversion_rate_high,
        reached_count / nullif(
            first_value(reached_count) over (
                partition by dimension, segment_value order by stage_order
            ), 0
        ) as reached_from_first_rate
    from rates
),

final as (
    select
        wilson.dimension,
        wilson.segment_value,
        wilson.journey_count,
        wilson.stage,
        cast(wilson.stage_order as integer) as stage_order,
        wilson.is_success_stage,
        wilson.is_final_stage,
        getvariable('funnel_mode') as counting_mode,
        wilson.reached_count,
        wilson.converted_count,
        wilson.abandoned_count,
        wilson.in_progress_count,
        wilson.conversion_rate,
        wilson.conversion_rate_low,
        wilson.conversion_rate_high,
        wilson.abandonment_rate,
        wilson.in_progress_rate,
        wilson.reached_from_first_rate,
        wilson.observed_reached_count,
        wilson.observed_converted_count,
        wilson.observed_conversion_rate,
        wilson.observed_conversion_rate_low,
        wilson.observed_conversion_rate_high,
        case when not wilson.is_final_stage then time_to_next.time_to_next_median_seconds end
            as time_to_next_median_seconds,
        case when not wilson.is_final_stage then time_to_next.time_to_next_p90_seconds end
            as time_to_next_p90_seconds,
        case
            when not wilson.is_final_stage
                then coalesce(time_to_next.time_to_next_observed_count, 0)
        end as time_to_next_observed_count,
        case
            when not wilson.is_final_stage
                then coalesce(time_to_next.time_to_next_censored_count, 0)
        end as time_to_next_censored_count
    from wilson
    left join time_to_next
        on time_to_next.dimension = wilson.dimension
        and time_to_next.segment_value = wilson.segment_value
        and time_to_next.stage_order = wilson.stage_order
)

select * from final
