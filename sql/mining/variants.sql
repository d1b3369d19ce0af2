-- Variants at event level: journeys that followed exactly the same sequence of event names.
-- Grouped by the list itself (a hash of the list could collide). `variant_rank` 1 is the
-- most frequent; conversion comes from `journeys.is_converted` (NULL when unknown).
-- Grain: one row per distinct event-name sequence. Key: variant_rank (or event_names).
with paths as (
    select journey_id, event_names, duration_seconds from journey_paths
),

outcomes as (
    select journey_id, is_converted from journeys
),

grouped as (
    select
        paths.event_names,
        count(*) as journey_count,
        median(paths.duration_seconds) as median_duration_seconds,
        count(*) filter (where outcomes.is_converted) as converted_count,
        count(outcomes.is_converted) as known_outcome_count
    from paths
    left join outcomes using (journey_id)
    group by paths.event_names
),

final as (
    select
        row_number() over (order by journey_count desc, event_names) as variant_rank,
        event_names,
        array_to_string(event_names, ' > ') as variant_label,
        len(event_names) as event_count,
        journey_count,
        journey_count / sum(journey_count) over () as journey_share,
        median_duration_seconds,
        converted_count,
        converted_count / nullif(known_outcome_count, 0) as conversion_rate
    from grouped
)

select * from final
