-- Loops and rework per journey: event names repeated, the same event twice in a row,
-- stages revisited after leaving them, and steps back to an earlier stage of the map.
-- Grain: one row per journey. Key: journey_id.
with paths as (
    select * from journey_paths
),

final as (
    select
        journey_id,
        touchpoint_count,
        repeated_event_count,
        self_loop_count,
        stage_visit_count,
        revisited_stage_count,
        step_back_count,
        repeated_event_count > 0 as has_repeated_event,
        revisited_stage_count > 0 as has_revisited_stage,
        step_back_count > 0 as has_step_back,
        repeated_event_count + revisited_stage_count + step_back_count > 0 as has_rework
    from paths
)

select * from final
