-- Report data: the most frequent stage paths and one "other" bucket for the rest.
-- One row per kept path plus at most one "other" row; key path_rank (0 = other).
-- Parameter ?: how many paths to keep.
with

variants as (
    select stage_path, journey_count from stage_variants
),

ranked as (
    select
        stage_path,
        journey_count,
        row_number() over (order by journey_count desc, array_to_string(stage_path, '>')) as path_rank
    from variants
),

kept as (
    select path_rank, stage_path, journey_count, false as is_other
    from ranked
    where path_rank <= ?
),

other as (
    select 0 as path_rank, []::varchar[] as stage_path, sum(journey_count) as journey_count, true as is_other
    from ranked
    where path_rank > (select max(path_rank) from kept)
    having count(*) > 0
),

final as (
    select
        path_rank,
        stage_path,
        cast(journey_count as bigint) as journey_count,
        journey_count / sum(journey_count) over () as journey_share,
        is_other
    from (select * from kept union all by name select * from other)
)

select * from final order by is_other, path_rank
