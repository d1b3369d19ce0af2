-- int_journey_touch_features: each touchpoint feature of a journey, with the first touchpoint
-- that has it (the per-journey half of int_dropoff_feature_counts).
--
-- Grain: one row per (journey_id, feature_kind, feature_value).
-- Key: (journey_id, feature_kind, feature_value).
-- Features (see int_dropoff_feature_counts): 'touchpoint' (source: event name), 'channel'
--   (touchpoint channel), 'failed_call' (value 'yes': an event in
--   emotion.failed_call_events) and 'page' (page_url without query or fragment).
-- first_seq: the smallest touchpoint_seq of the journey with the feature.
-- A function of one journey's touchpoints and the configuration alone, so the incremental
--   night recomputes it for the changed customers only (ADR 0106).
with

journey_touchpoints as (
    select journey_id, touchpoint_seq, source, event_name, channel, page_url from touchpoints
),

failed_call_events as (
    select value as event_name from emotion_event_kinds where kind = 'failed_call'
),

pages as (
    -- the page without query or fragment; the regex runs only where there is one to strip
    -- (the same value: without '?' or '#' it returns the url as it is; at 10M events 1.3 s
    -- of the model's wall time went into it on every url)
    select
        journey_id,
        touchpoint_seq,
        case
            when contains(page_url, '?') or contains(page_url, '#')
                then regexp_replace(page_url, '[?#].*$', '')
            else page_url
        end as page
    from journey_touchpoints
    where page_url is not null
),

final as (
    select journey_id, 'touchpoint' as feature_kind, source || ': ' || event_name as feature_value,
        min(touchpoint_seq) as first_seq
    from journey_touchpoints
    group by journey_id, source || ': ' || event_name
    union all
    select journey_id, 'channel' as feature_kind, channel as feature_value,
        min(touchpoint_seq) as first_seq
    from journey_touchpoints
    where channel is not null
    group by journey_id, channel
    union all
    select journey_id, 'failed_call' as feature_kind, 'yes' as feature_value,
        min(touchpoint_seq) as first_seq
    from journey_touchpoints
    where event_name in (select event_name from failed_call_events)
    group by journey_id
    union all
    select journey_id, 'page' as feature_kind, page as feature_value,
        min(touchpoint_seq) as first_seq
    from pages
    group by journey_id, page
)

select * from final
