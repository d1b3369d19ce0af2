-- Do journeys that leave the designed map convert better or worse, and at which stage?
-- overall: journeys with no deviation at all (path or channel) vs journeys with one.
-- stage:   among journeys that reached the stage, those that deviated there (a deviation
--          whose at_stage is this stage) vs those that followed the map there.
-- conversion_rate = converted / journeys with a known outcome, with a Wilson 95% interval.
-- Grain: one row per (scope, stage, path_group). Key: those three (stage NULL for overall).
with journey_variants as (
    select journey_paths.journey_id, journey_paths.stage_path, variants.stage_variant_id
    from journey_paths
    join stage_variants as variants on variants.stage_path = journey_paths.stage_path
),

outcomes as (
    select journey_id, is_converted from journeys
),

journey_deviation_stages as (
    select distinct journey_variants.journey_id, deviations.at_stage as stage
    from journey_variants
    join deviations using (stage_variant_id)
    where deviations.deviation_kind <> 'unexpected_channel'
    union
    select journey_id, stage from journey_channel_deviations
),

deviating_journeys as (
    select distinct journey_id from journey_deviation_stages
),

overall as (
    select
        'overall' as scope,
        null::varchar as stage,
        case when deviating_journeys.journey_id is null then 'conforming' else 'deviating' end
            as path_group,
        outcomes.is_converted
    from journey_variants
    left join deviating_journeys using (journey_id)
    left join outcomes using (journey_id)
),

reached as (
    select distinct journey_id, unnest(stage_path) as stage from journey_variants
),

per_stage as (
    select
        'stage' as scope,
        reached.stage,
        case when here.journey_id is null then 'conforming' else 'deviating' end as path_group,
        outcomes.is_converted
    from reached
    left join journey_deviation_stages as here using (journey_id, stage)
    left join outcomes using (journey_id)
),

counted as (
    select
        scope,
        stage,
        path_group,
        count(*) as journey_count,
        count(is_converted) as known_outcome_count,
        count(*) filter (where is_converted) as converted_count
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
