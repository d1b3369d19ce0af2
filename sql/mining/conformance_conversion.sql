-- Do journeys that leave the designed map convert better or worse, and at which stage?
-- overall: journeys with no deviation at all (path or channel) vs journeys with one.
-- stage:   among journeys that reached the stage, those that deviated there (a deviation
--          whose at_stage is this stage) vs those that followed the map there.
-- conversion_rate = converted / journeys with a known outcome, with a Wilson 95% interval.
-- Grain: one row per (scope, stage, path_group). Key: those three (stage NULL for overall).
-- Counted by stage variant (ADR 0122): a journey's path deviations and the stages it
-- reached are its variant's, so journeys are counted per (variant, outcome) and the variant's
-- stages weighted by that count. Only journeys with a channel deviation (journey-level,
-- few) are taken one by one.
with journey_variants as (
    select journey_paths.journey_id, variants.stage_variant_id
    from journey_paths
    join stage_variants as variants on variants.stage_path = journey_paths.stage_path
),

outcomes as (
    select journey_id, is_converted from journeys
),

channel_deviation_stages as (
    select distinct journey_id, stage from journey_channel_deviations
),

path_deviation_stages as (
    select distinct stage_variant_id, at_stage as stage
    from deviations
    where deviation_kind <> 'unexpected_channel'
),

deviating_variants as (
    select distinct stage_variant_id from path_deviation_stages
),

variant_stages as (
    select distinct stage_variant_id, unnest(stage_path) as stage from stage_variants
),

-- journeys without a channel deviation, by variant and outcome
by_variant as (
    select journey_variants.stage_variant_id, outcomes.is_converted, count(*) as journeys
    from journey_variants
    anti join channel_deviation_stages using (journey_id)
    left join outcomes using (journey_id)
    group by all
),

-- journeys with one: each with its variant's deviation stages and its own
channel_journeys as (
    select journey_variants.journey_id, journey_variants.stage_variant_id, outcomes.is_converted
    from journey_variants
    semi join channel_deviation_stages using (journey_id)
    left join outcomes using (journey_id)
),

channel_journey_stages as (
    select channel_journeys.journey_id, path_deviation_stages.stage
    from channel_journeys
    join path_deviation_stages using (stage_variant_id)
    union
    select journey_id, stage from channel_deviation_stages
),

overall as (
    select
        'overall' as scope,
        null::varchar as stage,
        case when deviating_variants.stage_variant_id is null then 'conforming' else 'deviating' end
            as path_group,
        by_variant.is_converted,
        by_variant.journeys
    from by_variant
    left join deviating_variants using (stage_variant_id)
    union all
    select 'overall', null::varchar, 'deviating', is_converted, 1 from channel_journeys
),

per_stage as (
    select
        'stage' as scope,
        variant_stages.stage,
        case when here.stage is null then 'conforming' else 'deviating' end as path_group,
        by_variant.is_converted,
        by_variant.journeys
    from by_variant
    join variant_stages using (stage_variant_id)
    left join path_deviation_stages as here using (stage_variant_id, stage)
    union all
    select
        'stage',
        variant_stages.stage,
        case when here.stage is null then 'conforming' else 'deviating' end,
        channel_journeys.is_converted,
        1
    from channel_journeys
    join variant_stages using (stage_variant_id)
    left join channel_journey_stages as here using (journey_id, stage)
),

counted as (
    select
        scope,
        stage,
        path_group,
        sum(journeys)::bigint as journey_count,
        coalesce(sum(journeys) filter (where is_converted is not null), 0)::bigint
            as known_outcome_count,
        coalesce(sum(journeys) filter (where is_converted), 0)::bigint as converted_count
    from (select * from overall union all select * from per_stage)
    group by all
),

rates as (
    select
        *,
        converted_count / nullif(known_outcome_count, 0) as p,
        1.959963984540054 as z  -- the 97.5% normal quantile: a 95% interval
    from counted
),

wilson as (
    select
        *,
        p + z * z / (2 * known_outcome_count) as center,
        z * sqrt(p * (1 - p) / known_outcome_count + z * z / (4 * known_outcome_count ^ 2))
            as half_width,
        1 + z * z / known_outcome_count as scale
    from rates
),

final as (
    select
        scope,
        stage,
        path_group,
        journey_count,
        known_outcome_count,
        converted_count,
        p as conversion_rate,
        greatest(0.0, (center - half_width) / scale) as conversion_rate_low,
        least(1.0, (center + half_width) / scale) as conversion_rate_high
    from wilson
    order by scope, stage, path_group
)

select * from final
