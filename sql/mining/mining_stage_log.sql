-- Mining log, stage level: consecutive touchpoints of one stage form one stage visit
-- (touchpoints no stage rule maps are skipped); each visit carries the visit after it.
-- Grain: one row per stage visit. Key: (journey_id, stage_visit_seq).
with journeys as (
    select
        journey_id,
        list_filter(steps, lambda step: step.stage_order is not null) as mapped
    from journey_steps
),

visits as (
    select
        journey_id,
        list_filter(mapped, lambda step, i: i = 1 or step.stage_order <> mapped[i - 1].stage_order)
            as visits
    from journeys
),

stage_names as (
    select stage, stage_order from designed_stages
),

unnested as (
    select
        journey_id,
        unnest(visits) as visit,
        unnest(visits[2:]) as next_visit,  -- the shorter list is padded with NULL
        generate_subscripts(visits, 1) as stage_visit_seq
    from visits
),

final as (
    select
        unnested.journey_id,
        unnested.stage_visit_seq,
        unnested.visit.seq as first_touchpoint_seq,
        this_stage.stage,
        unnested.visit.stage_order,
        make_timestamp(unnested.visit.at_us) as entered_at,
        next_stage.stage as next_stage,
        make_timestamp(unnested.next_visit.at_us) as next_entered_at,
        (unnested.next_visit.at_us - unnested.visit.at_us) / 1e6 as seconds_to_next_stage
    from unnested
    left join stage_names as this_stage on this_stage.stage_order = unnested.visit.stage_order
    left join stage_names as next_stage on next_stage.stage_order = unnested.next_visit.stage_order
)

select * from final
