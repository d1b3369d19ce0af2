-- int_stage_entry_segments: each journey's segment values as known when it entered a stage.
--
-- Grain: one row per (journey, non-final stage it reached, dimension). Key: (journey_id,
--   stage_order, dimension).
--
-- No look-ahead: an attribute recorded only later in the journey (a region that arrives
-- with the first CRM record, a device first seen on a late web visit) is '(unknown)' at the
-- earlier stages. The constraint's benchmarks and the drop-off drivers compare journeys at
-- a stage by what was known about them there, so an attribute cannot "predict" the outcome
-- merely because it is recorded by the next stage (ADR 0023, ADR 0024).
-- Dimensions: the configured ones of segment_dimensions except 'channel' (channels used:
--   the drivers take channels from touchpoints instead); device, region, utm_* = first
--   non-NULL value among touchpoints up to the one that entered the stage; first-touch
--   channel / source, customer type, cohort week are known from the first touchpoint.
with

facts as (
    select journey_id, stage_order, entered_seq
    from int_journey_stage_facts
    where not is_final_stage
),

journey_touchpoints as (
    select journey_id, touchpoint_seq, device, region, utm_source, utm_medium, utm_campaign
    from touchpoints
),

journey_rows as (
    select * from journeys
),

dimensions as (
    select dimension from segment_dimensions where dimension <> 'channel'
),

first_known as (
    -- each attribute's first non-NULL value in the journey and the touchpoint_seq it came at:
    -- it is known at entry to k exactly when that seq <= entered_seq (ADR 0076: one pass
    -- over the touchpoints per journey, not one per stage)
    select
        journey_id,
        arg_min(device, touchpoint_seq) filter (where device is not null) as device,
        min(touchpoint_seq) filter (where device is not null) as device_seq,
        arg_min(region, touchpoint_seq) filter (where region is not null) as region,
        min(touchpoint_seq) filter (where region is not null) as region_seq,
        arg_min(utm_source, touchpoint_seq) filter (where utm_source is not null) as utm_source,
        min(touchpoint_seq) filter (where utm_source is not null) as utm_source_seq,
        arg_min(utm_medium, touchpoint_seq) filter (where utm_medium is not null) as utm_medium,
        min(touchpoint_seq) filter (where utm_medium is not null) as utm_medium_seq,
        arg_min(utm_campaign, touchpoint_seq) filter (where utm_campaign is not null)
            as utm_campaign,
        min(touchpoint_seq) filter (where utm_campaign is not null) as utm_campaign_seq
    from journey_touchpoints
    group by journey_id
),

known_at_entry as (
    select
        facts.journey_id,
        facts.stage_order,
        case when first_known.device_seq <= facts.entered_seq then first_known.device end
            as device,
        case when first_known.region_seq <= facts.entered_seq then first_known.region end
            as region,
        case when first_known.utm_source_seq <= facts.entered_seq then first_known.utm_source end
            as utm_source,
        case when first_known.utm_medium_seq <= facts.entered_seq then first_known.utm_medium end
            as utm_medium,
        case
            when first_known.utm_campaign_seq <= facts.entered_seq then first_known.utm_campaign
        end as utm_campaign
    from facts
    inner join first_known on first_known.journey_id = facts.journey_id
),

wide as (
    select
        known_at_entry.journey_id,
        known_at_entry.stage_order,
        coalesce(journey_rows.first_touch_channel, '(unknown)') as first_touch_channel,
        coalesce(journey_rows.first_touch_source, '(unknown)') as first_touch_source,
        coalesce(known_at_entry.device, '(unknown)') as device,
        coalesce(known_at_entry.region, '(unknown)') as region,
        journey_rows.customer_type,
        coalesce(known_at_entry.utm_source, '(unknown)') as utm_source,
        coalesce(known_at_entry.utm_medium, '(unknown)') as utm_medium,
        coalesce(known_at_entry.utm_campaign, '(unknown)') as utm_campaign,
        strftime(journey_rows.cohort_week, '%Y-%m-%d') as cohort_week
    from known_at_entry
    inner join journey_rows on journey_rows.journey_id = known_at_entry.journey_id
),

long_form as (
    unpivot wide
    on first_touch_channel, first_touch_source, device, region, customer_type,
        utm_source, utm_medium, utm_campaign, cohort_week
    into name dimension value segment_value
),

final as (
    select long_form.journey_id, long_form.stage_order, long_form.dimension,
        long_form.segment_value
    from long_form
    inner join dimensions on dimensions.dimension = long_form.dimension
)

select * from final
