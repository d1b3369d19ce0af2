-- segment_history (this night's rows): one row per run, segment and segment value;
-- key (run_id, segment, segment_value). Journeys and converted journeys per value of each
-- configured segment column of `journeys` (the column list is generated from validated
-- identifiers that exist in `journeys`; no config value is pasted as data).
with

journey_segments as (
    select is_converted, {casts} from journeys
),

long_form as (
    unpivot journey_segments on {names} into name segment value segment_value
),

final as (
    select
        getvariable('run_id') as run_id,
        cast(getvariable('as_of') as timestamp) as as_of,
        segment,
        segment_value,
        count(*) as journey_count,
        count(*) filter (where is_converted) as converted_count
    from long_form
    group by all
)

select * from final order by segment, segment_value
