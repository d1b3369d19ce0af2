-- int_journey_stage_facts: what happened to each journey at each stage it reached.
--
-- Grain: one row per journey and stage the journey reached in the counting mode
--   (entered_seq not NULL in int_journey_stage_entries). Key: (journey_id, stage_order).
--
-- Definitions, for a stage k that is not the final (last configured) stage:
--   is_moved_on: the journey reached stage k+1 (converted(k) counts these);
--   is_abandoned_here: it did not move on and its last touchpoint is older than the
--     abandonment timeout at as_of (journeys.is_stale); this applies at every non-final
--     stage, the success stage and later ones included ("went no further than k": ADR 0021);
--   is_in_progress_here: it did not move on and is not stale (still on its way);
--     so exactly one of the three is true: reached = converted + abandoned + in progress.
--   time_to_next_seconds: from entering k to entering k+1 (movers only).
--   Kaplan-Meier input (ADR 0022): movers are events at time_to_next_seconds; in-progress
--     journeys are censored at as_of - entered_at (they may still move on; the duration is
--     taken in int_stage_time_to_next, so a row here changes with as_of only when its
--     journey goes stale, ADR 0108); abandoned journeys have left the stage without moving
--     on, are not at risk, and are excluded (is_km_at_risk false), so the median describes
--     journeys that move on, and open journeys cannot flatter a slow stage.
--   is_entry_observed: the touchpoint where the journey entered k maps to k itself (always
--     in ordered mode; in furthest mode false when the journey skipped k, e.g. was first
--     seen at a later stage). The constraint's benchmarks compare observed entries only, so
--     segments first seen late in the funnel do not look like perfect converters (ADR 0023).
-- At the final stage the three flags and the times are NULL (there is no next stage).
with

stage_entries as (
    select * from int_journey_stage_entries
),

journey_states as (
    select journey_id, reached_stage_order, is_stale from journeys
),

stages as (
    select * from stage_definitions
),

with_next as (
    -- the next stage's entry by an equality join on (journey_id, stage_order + 1): the grid
    -- holds every configured stage of every journey, so this is the row lead() would give
    -- (ADR 0076: a hash join instead of a window sorted by journey_id)
    select
        stage_entries.*,
        next_entries.entered_seq as next_entered_seq,
        next_entries.entered_at as next_entered_at
    from stage_entries
    left join stage_entries as next_entries
        on next_entries.journey_id = stage_entries.journey_id
        and next_entries.stage_order = stage_entries.stage_order + 1
),

reached_rows as (
    select
        with_next.journey_id,
        with_next.stage,
        with_next.stage_order,
        with_next.entered_seq,
        with_next.entered_at,
        with_next.next_entered_seq,
        with_next.next_entered_at,
        getvariable('funnel_mode') = 'ordered'
            or with_next.entered_seq = with_next.first_touch_seq as is_entry_observed,
        stages.is_final_stage,
        stages.is_success_stage,
        journey_states.is_stale
    from with_next
    inner join journey_states on journey_states.journey_id = with_next.journey_id
    inner join stages on stages.stage_order = with_next.stage_order
    where with_next.entered_seq is not null
),

flagged as (
    select
        *,
        case when not is_final_stage then next_entered_seq is not null end as is_moved_on,
        case
            when not is_final_stage then next_entered_seq is null and is_stale
        end as is_abandoned_here,
        case
            when not is_final_stage then next_entered_seq is null and not is_stale
        end as is_in_progress_here
    from reached_rows
),

final as (
    select
        journey_id,
        stage,
        stage_order,
        is_success_stage,
        is_final_stage,
        entered_seq,
        entered_at,
        next_entered_seq,
        next_entered_at,
        is_moved_on,
        is_abandoned_here,
        is_in_progress_here,
        is_entry_observed,
        case
            when is_moved_on then epoch(next_entered_at) - epoch(entered_at)
        end as time_to_next_seconds,
        coalesce(is_moved_on or is_in_progress_here, false) as is_km_at_risk,
        coalesce(is_moved_on, false) as is_km_event
    from flagged
)

select * from final
