-- The path of each journey at both levels, with its rework counts, from one pass over the
-- mining log: the event names in order, the stage visits in order, duration and repeats.
-- Grain: one row per journey. Key: journey_id.
with steps as (
    select * from mining_log
),

paths as (
    select
        journey_id,
        list(event_name order by touchpoint_seq) as event_names,
        list(stage order by touchpoint_seq) filter (where is_stage_visit_start) as stage_path,
        min(event_at) as first_touch_at,
        max(event_at) as last_touch_at,
        count(*) as touchpoint_count,
        count(*) filter (where event_name = next_event_name) as self_loop_count,
        count(*) filter (where is_stage_visit_start) as stage_visit_count,
        count(*) filter (where is_stage_visit_start and is_step_back) as step_back_count
    from steps
    group by journey_id
),

final as (
    select
        journey_id,
        event_names,
        coalesce(stage_path, []::varchar[]) as stage_path,
        first_touch_at,
        last_touch_at,
        (epoch_us(last_touch_at) - epoch_us(first_touch_at)) / 1e6 as duration_seconds,
        touchpoint_count,
        -- distinct counts on the short per-journey lists: far cheaper than count(distinct)
        touchpoint_count - len(list_distinct(event_names)) as repeated_event_count,
        self_loop_count,
        stage_visit_count,
        stage_visit_count - len(list_distinct(coalesce(stage_path, []))) as revisited_stage_count,
        step_back_count
    from paths
)

select * from final
