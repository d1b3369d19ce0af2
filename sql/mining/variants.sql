-- Variants at event level: journeys that followed exactly the same sequence of event names.
-- Grouped by the list itself (of integer codes; a hash of a list could collide), names put
-- back on the grouped rows. `variant_rank` 1 is the most frequent (ties by the sequence);
-- conversion comes from `journeys.is_converted` (NULL when no outcome is known).
-- Grain: one row per distinct event-name sequence. Key: variant_rank (or event_names).
with journey_codes as (
    select
        journey_id,
        list_transform(steps, lambda step: step.event_code) as codes,
        (steps[-1].at_us - steps[1].at_us) / 1e6 as duration_seconds
    from journey_steps
),

outcomes as (
    select journey_id, is_converted from journeys
),

event_names as (
    select list(event_name order by event_code) as name_of_code from mining_event_codes
),

grouped as (
    select
        journey_codes.codes,
        count(*) as journey_count,
        median(journey_codes.duration_seconds) as median_duration_seconds,
        count(*) filter (where outcomes.is_converted) as converted_count,
        count(outcomes.is_converted) as known_outcome_count
    from journey_codes
    left join outcomes using (journey_id)
    group by journey_codes.codes
),

named as (
    select
        list_transform(grouped.codes, lambda code: event_names.name_of_code[code]) as event_names,
        grouped.* exclude (codes)
    from grouped
    cross join event_names
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
    from named
)

select * from final
