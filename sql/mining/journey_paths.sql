-- The path of each journey at both levels, with its rework counts, from journey_steps:
-- the event names in order, the stage visits in order (consecutive touchpoints of one
-- stage are one visit; unmapped touchpoints are skipped), duration and repeats.
-- Grain: one row per journey. Key: journey_id.
with journeys as (
    select journey_id, steps from journey_steps
),

event_names as (
    select list(event_name order by event_code) as name_of_code from mining_event_codes
),

stage_names as (
    select list(stage order by stage_order) as name_of_order from designed_stages
),

lists as (
    select
        journey_id,
        list_transform(steps, lambda step: step.event_code) as codes,
        list_filter(
            list_transform(steps, lambda step: step.stage_order), lambda stage_order: stage_order is not null
        ) as mapped_orders,
        steps[1].at_us as first_us,
        steps[-1].at_us as last_us
    from journeys
),

visits as (
    select
        *,
        list_filter(mapped_orders, lambda o, i: i = 1 or o <> mapped_orders[i - 1]) as visit_orders
    from lists
),

final as (
    select
        visits.journey_id,
        list_transform(visits.codes, lambda code: event_names.name_of_code[code]) as event_names,
        list_transform(visits.visit_orders, lambda o: stage_names.name_of_order[o]) as stage_path,
        make_timestamp(visits.first_us) as first_touch_at,
        make_timestamp(visits.last_us) as last_touch_at,
        (visits.last_us - visits.first_us) / 1e6 as duration_seconds,
        len(visits.codes) as touchpoint_count,
        len(visits.codes) - len(list_distinct(visits.codes)) as repeated_event_count,
        len(list_filter(visits.codes, lambda code, i: i > 1 and code = visits.codes[i - 1]))
            as self_loop_count,
        len(visits.visit_orders) as stage_visit_count,
        len(visits.visit_orders) - len(list_distinct(visits.visit_orders)) as revisited_stage_count,
        len(list_filter(visits.visit_orders, lambda o, i: i > 1 and o < visits.visit_orders[i - 1]))
            as step_back_count
    from visits
    cross join event_names
    cross join stage_names
)

select * from final
