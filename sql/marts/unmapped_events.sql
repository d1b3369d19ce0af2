-- unmapped_events: events of known customers that no stage rule maps (kept in touchpoints
-- with stage NULL), counted so a gap in the journey map is visible, never silent.
--
-- Grain: one row per (source, event_name) with at least one unmapped touchpoint.
-- Key: (source, event_name).
-- Definitions: touchpoint_count = unmapped touchpoints; source_share_rate = that count /
--   all touchpoints of the source; customer_count, journey_count = distinct ones having
--   it; first_event_at / last_event_at = time span.
with

all_touchpoints as (
    select * from touchpoints
),

per_source as (
    select source, count(*) as source_touchpoint_count from all_touchpoints group by source
),

unmapped as (
    select
        source,
        event_name,
        count(*) as touchpoint_count,
        count(distinct customer_id) as customer_count,
        count(distinct journey_id) as journey_count,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from all_touchpoints
    where stage is null
    group by source, event_name
),

final as (
    select
        unmapped.source,
        unmapped.event_name,
        unmapped.touchpoint_count,
        unmapped.touchpoint_count / per_source.source_touchpoint_count as source_share_rate,
        unmapped.customer_count,
        unmapped.journey_count,
        unmapped.first_event_at,
        unmapped.last_event_at
    from unmapped
    inner join per_source on per_source.source = unmapped.source
    order by unmapped.touchpoint_count desc, unmapped.source, unmapped.event_name
)

select * from final
