-- Variants at stage level: journeys that visited the same stages in the same order
-- (consecutive touchpoints of one stage are one visit). Journeys with no mapped touchpoint
-- have an empty path and are left out here (build_mining reports how many).
-- Grain: one row per distinct stage path. Key: stage_variant_id (or stage_path).
with paths as (
    select journey_id, stage_path, duration_seconds from journey_paths where len(stage_path) > 0
),

outcomes as (
    select journey_id, is_converted from journeys
),

grouped as (
    select
        paths.stage_path,
        count(*) as journey_count,
        median(paths.duration_seconds) as median_duration_seconds,
        count(*) filter (where outcomes.is_converted) as converted_count,
        count(outcomes.is_converted) as known_outcome_count
    from paths
    left join outcomes using (journey_id)
    group by paths.stage_path
),

final as (
    select
        row_number() over (order by journey_count desc, stage_path) as stage_variant_id,
        stage_path,
        array_to_string(stage_path, ' > ') as stage_path_label,
        len(stage_path) as stage_visit_count,
        journey_count,
        journey_count / sum(journey_count) over () as journey_share,
        median_duration_seconds,
        converted_count,
        converted_count / nullif(known_outcome_count, 0) as conversion_rate
    from grouped
)

select * from final
