-- Where each stage variant leaves the designed journey (designed_transitions, stage order):
--   skipped_stage          a forward move that is not designed, one row per stage jumped over
--                          (entering the map after its first stage skips the stages before,
--                          unless mining.conformance_allow_late_entry);
--   unexpected_transition  a forward move that is not designed but jumps over no stage;
--   step_back              a move that is not designed to a stage earlier in the map;
--   loop                   coming back, by a move that is not designed, to a stage already
--                          visited and left;
--   unexpected_channel     touchpoints in a channel the stage does not expect.
-- `at_stage` is where in the journey it happens (a stage on its path); `affected_stage` is
-- the stage concerned (the one skipped, returned to, or the stage itself).
-- Grain: one row per (stage_variant_id, deviation_kind, at_stage, affected_stage, channel).
with variants as (
    select stage_variant_id, stage_path, journey_count from stage_variants
),

stage_order as (
    select stage, stage_order from designed_stages
),

designed_moves as (
    select from_stage, to_stage, true as is_designed from designed_transitions
),

entry_stages as (
    select stage from designed_stages
    where stage not in (select to_stage from designed_transitions)
        or coalesce(getvariable('mining_allow_late_entry'), false)
),

visits as (
    select
        stage_variant_id,
        journey_count,
        unnest(stage_path) as to_stage,
        generate_subscripts(stage_path, 1) as position
    from variants
),

moves as (
    select
        *,
        lag(to_stage) over variant_order as from_stage,
        count(*) over (
            partition by stage_variant_id, to_stage order by position
            rows between unbounded preceding and 1 preceding
        ) > 0 as is_revisit
    from visits
    window variant_order as (partition by stage_variant_id order by position)
),

classified as (
    select
        moves.*,
        from_order.stage_order as from_order,
        to_order.stage_order as to_order,
        coalesce(designed_moves.is_designed, false)
            or (moves.from_stage is null and moves.to_stage in (select stage from entry_stages))
            as is_designed
    from moves
    left join stage_order as from_order on from_order.stage = moves.from_stage
    left join stage_order as to_order on to_order.stage = moves.to_stage
    left join designed_moves using (from_stage, to_stage)
),

forward_undesigned as (
    select * from classified
    where not is_designed and to_order > coalesce(from_order, 0)
),

skipped as (
    select
        forward_undesigned.stage_variant_id,
        forward_undesigned.position,
        forward_undesigned.journey_count,
        coalesce(forward_undesigned.from_stage, forward_undesigned.to_stage) as at_stage,
        jumped.stage as affected_stage
    from forward_undesigned
    join stage_order as jumped
        on jumped.stage_order < forward_undesigned.to_order
        and jumped.stage_order > coalesce(forward_undesigned.from_order, 0)
),

path_deviations as (
    select stage_variant_id, journey_count, 'skipped_stage' as deviation_kind, at_stage, affected_stage
    from skipped
    union all
    select
        stage_variant_id,
        journey_count,
        'unexpected_transition',
        coalesce(from_stage, to_stage),
        to_stage
    from forward_undesigned
    where not exists (
        select 1 from skipped
        where skipped.stage_variant_id = forward_undesigned.stage_variant_id
            and skipped.position = forward_undesigned.position
    )
    union all
    select stage_variant_id, journey_count, 'step_back', from_stage, to_stage
    from classified
    where not is_designed and to_order < from_order
    union all
    select stage_variant_id, journey_count, 'loop', to_stage, to_stage
    from classified
    where not is_designed and is_revisit
),

path_counted as (
    select
        stage_variant_id,
        deviation_kind,
        at_stage,
        affected_stage,
        null::varchar as channel,
        count(*) as occurrence_count,
        any_value(journey_count) as journey_count
    from path_deviations
    group by all
),

channel_counted as (
    select
        variants.stage_variant_id,
        'unexpected_channel' as deviation_kind,
        channel_deviations.stage as at_stage,
        channel_deviations.stage as affected_stage,
        channel_deviations.channel,
        sum(channel_deviations.touchpoint_count)::bigint as occurrence_count,
        count(*) as journey_count
    from journey_channel_deviations as channel_deviations
    join journey_paths using (journey_id)
    join variants on variants.stage_path = journey_paths.stage_path
    group by all
),

final as (
    select * from path_counted
    union all
    select * from channel_counted
)

select * from final
