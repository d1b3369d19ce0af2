-- journeys: one customer's touchpoints between two gaps of inactivity (see touchpoints).
--
-- Grain: one row per journey. Key: journey_id.
--
-- Definitions:
--   furthest_stage / furthest_stage_order: the highest stage any touchpoint maps to
--     (whatever the counting mode); NULL when no touchpoint maps to a stage.
--   reached_stage / reached_stage_order: the last stage the journey reached in the counting
--     mode (getvariable('funnel_mode')): in furthest mode = furthest_stage; in ordered mode
--     the end of the ordered chain (stages 1..k touched in order, int_journey_stage_entries).
--   is_stale: the last touchpoint is older than getvariable('abandonment_seconds') at
--     getvariable('as_of'): epoch(as_of) - epoch(last_touch_at) > abandonment_seconds.
--   status (as of as_of): 'converted' when reached_stage_order >= the success stage's
--     order; else 'abandoned' when is_stale; else 'in_progress' (never counted as lost).
--   segment attributes: first_touch_channel / first_touch_source = channel / source of
--     touchpoint 1; device, region, utm_* = first non-NULL value in touchpoint order;
--     customer_type = 'new' for the customer's first journey in the data, else 'returning';
--     cohort_week = Monday of the ISO week of first_touch_at; channels = sorted distinct
--     channels of its touchpoints.
with

journey_touchpoints as (
    select * from touchpoints
),

stage_entries as (
    select * from int_journey_stage_entries
),

stages as (
    select * from stage_definitions
),

success_stage as (
    select min(stage_order) as success_stage_order from stages where is_success_stage
),

touch_summary as (
    select
        journey_id,
        any_value(customer_id) as customer_id,
        any_value(journey_number) as journey_number,
        min(event_at) as first_touch_at,
        max(event_at) as last_touch_at,
        count(*) as touchpoint_count,
        count(*) filter (where stage_order is null) as unmapped_touchpoint_count,
        max(stage_order) as furthest_stage_order,
        arg_min(channel, touchpoint_seq) as first_touch_channel,
        arg_min(source, touchpoint_seq) as first_touch_source,
        arg_min(device, touchpoint_seq) filter (where device is not null) as device,
        arg_min(region, touchpoint_seq) filter (where region is not null) as region,
        arg_min(utm_source, touchpoint_seq) filter (where utm_source is not null) as utm_source,
        arg_min(utm_medium, touchpoint_seq) filter (where utm_medium is not null) as utm_medium,
        arg_min(utm_campaign, touchpoint_seq) filter (where utm_campaign is not null)
            as utm_campaign,
        list_sort(list(distinct channel) filter (where channel is not null)) as channels
    from journey_touchpoints
    group by journey_id
),

reached as (
    select journey_id, max(stage_order) as reached_stage_order
    from stage_entries
    where entered_seq is not null
    group by journey_id
),

classified as (
    select
        touch_summary.*,
        reached.reached_stage_order,
        success_stage.success_stage_order,
        epoch(getvariable('as_of')) - epoch(touch_summary.last_touch_at)
            > getvariable('abandonment_seconds') as is_stale
    from touch_summary
    left join reached on reached.journey_id = touch_summary.journey_id
    cross join success_stage
),

final as (
    select
        classified.journey_id,
        classified.customer_id,
        classified.first_touch_at,
        classified.last_touch_at,
        classified.touchpoint_count,
        furthest.stage as furthest_stage,
        cast(classified.furthest_stage_order as integer) as furthest_stage_order,
        case
            when classified.reached_stage_order >= classified.success_stage_order then 'converted'
            when classified.is_stale then 'abandoned'
            else 'in_progress'
        end as status,
        coalesce(classified.reached_stage_order >= classified.success_stage_order, false)
            as is_converted,
        reached_stage.stage as reached_stage,
        cast(classified.reached_stage_order as integer) as reached_stage_order,
        classified.is_stale,
        classified.unmapped_touchpoint_count,
        classified.journey_number,
        case when classified.journey_number = 1 then 'new' else 'returning' end as customer_type,
        classified.first_touch_channel,
        classified.first_touch_source,
        classified.device,
        classified.region,
        classified.utm_source,
        classified.utm_medium,
        classified.utm_campaign,
        classified.channels,
        cast(len(classified.channels) as integer) as channel_count,
        cast(date_trunc('week', classified.first_touch_at) as date) as cohort_week,
        epoch(classified.last_touch_at) - epoch(classified.first_touch_at) as duration_seconds
    from classified
    left join stages as furthest on furthest.stage_order = classified.furthest_stage_order
    left join stages as reached_stage on reached_stage.stage_order = classified.reached_stage_order
)

select * from final
