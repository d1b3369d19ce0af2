-- int_journey_segments: the segment values of each journey, long format.
--
-- Grain: one row per journey, dimension and segment value. Key: (journey_id, dimension,
--   segment_value).
--
-- Dimensions: 'all' (value 'all', every journey), the `segments:` of journey.yaml (loaded
--   into segment_dimensions by cjm_analytics.journeys; allowed: first_touch_channel,
--   first_touch_source, device, region, customer_type, utm_source, utm_medium,
--   utm_campaign), plus always 'channel' and 'cohort_week'.
--   'channel': one row per channel the journey used, so a journey that used web and phone
--     counts in both values (these groups overlap; every other dimension partitions).
--   'cohort_week': the ISO week (Monday, yyyy-mm-dd) of the journey's first touchpoint.
--   A NULL attribute becomes the value '(unknown)', so each partitioning dimension still
--   adds up to all journeys.
with

journey_rows as (
    select * from journeys
),

dimensions as (
    select dimension from segment_dimensions
),

single_valued as (
    unpivot (
        select
            journey_id,
            coalesce(first_touch_channel, '(unknown)') as first_touch_channel,
            coalesce(first_touch_source, '(unknown)') as first_touch_source,
            coalesce(device, '(unknown)') as device,
            coalesce(region, '(unknown)') as region,
            customer_type,
            coalesce(utm_source, '(unknown)') as utm_source,
            coalesce(utm_medium, '(unknown)') as utm_medium,
            coalesce(utm_campaign, '(unknown)') as utm_campaign,
            strftime(cohort_week, '%Y-%m-%d') as cohort_week
        from journey_rows
    )
    on first_touch_channel, first_touch_source, device, region, customer_type,
        utm_source, utm_medium, utm_campaign, cohort_week
    into name dimension value segment_value
),

channel_rows as (
    select distinct journey_id, 'channel' as dimension, unnest(channels) as segment_value
    from journey_rows
),

all_rows as (
    select journey_id, 'all' as dimension, 'all' as segment_value from journey_rows
),

final as (
    select * from all_rows
    union all
    select single_valued.journey_id, single_valued.dimension, single_valued.segment_value
    from single_valued
    inner join dimensions on dimensions.dimension = single_valued.dimension
    union all
    select channel_rows.*
    from channel_rows
    inner join dimensions on dimensions.dimension = channel_rows.dimension
)

select * from final
