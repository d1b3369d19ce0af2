-- Report data: journeys per kind of deviation from the designed map (a journey with two
-- kinds counts in both). One row per deviation_kind; key deviation_kind.
with

deviations as (
    select stage_variant_id, deviation_kind, journey_count from deviations
),

per_variant as (
    select deviation_kind, stage_variant_id, max(journey_count) as journey_count
    from deviations
    group by all
),

final as (
    select deviation_kind, cast(sum(journey_count) as bigint) as journey_count
    from per_variant
    group by all
)

select * from final order by journey_count desc
