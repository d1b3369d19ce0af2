-- Conformance of each stage variant to the designed journey: token-replay fitness on the
-- Petri net of the designed map (from stage_variant_fitness, written by build_mining; NULL
-- for variants beyond the replayed coverage) and the kinds of deviation it shows.
-- `is_conforming_path`: the stage path has no path deviation (then its fitness is 1).
-- Grain: one row per stage variant. Key: stage_variant_id.
with variants as (
    select * from stage_variants
),

fitness as (
    select * from stage_variant_fitness
),

deviation_flags as (
    select
        stage_variant_id,
        bool_or(deviation_kind = 'skipped_stage') as has_skipped_stage,
        bool_or(deviation_kind = 'unexpected_transition') as has_unexpected_transition,
        bool_or(deviation_kind = 'step_back') as has_step_back,
        bool_or(deviation_kind = 'loop') as has_loop,
        bool_or(deviation_kind <> 'unexpected_channel') as has_path_deviation
    from deviations
    group by stage_variant_id
),

channel_journeys as (
    select variants.stage_variant_id, count(distinct journey_id) as journey_count
    from journey_channel_deviations
    join journey_paths using (journey_id)
    join variants on variants.stage_path = journey_paths.stage_path
    group by variants.stage_variant_id
),

final as (
    select
        variants.stage_variant_id,
        variants.stage_path,
        variants.stage_path_label,
        variants.journey_count,
        variants.journey_share,
        variants.conversion_rate,
        coalesce(fitness.is_replayed, false) as is_replayed,
        fitness.trace_fitness,
        fitness.is_fit,
        fitness.missing_token_count,
        fitness.remaining_token_count,
        fitness.consumed_token_count,
        fitness.produced_token_count,
        not coalesce(deviation_flags.has_path_deviation, false) as is_conforming_path,
        coalesce(deviation_flags.has_skipped_stage, false) as has_skipped_stage,
        coalesce(deviation_flags.has_unexpected_transition, false) as has_unexpected_transition,
        coalesce(deviation_flags.has_step_back, false) as has_step_back,
        coalesce(deviation_flags.has_loop, false) as has_loop,
        coalesce(channel_journeys.journey_count, 0) as unexpected_channel_journey_count
    from variants
    left join fitness using (stage_variant_id)
    left join deviation_flags using (stage_variant_id)
    left join channel_journeys using (stage_variant_id)
)

select * from final
