-- touchpoints: every event of a known customer, mapped to a stage and cut into journeys.
--
-- Grain: one row per event with a non-null customer_id (unmapped events included, with
--   stage NULL: process mining needs the whole log; they are counted in unmapped_events).
-- Key: touchpoint_id (= source || ':' || event_id); also (journey_id, touchpoint_seq).
--
-- Definitions: the order of a customer's events, journey, journey_number, journey_id,
--   touchpoint_seq and journey_stage(_order) are int_touchpoint_sequence's; stage is the
--   name of stage_order; channel: the matching rule's channel when it sets one, else the
--   event's channel. The lineage columns (properties, source_file, source_row,
--   source_event_seq) stay in `events` (join on source, event_id).
--
-- Cost (ADR 0106): one hash join of the narrow sequence with the events' columns, and one
--   sort into journey order (the table's physical order). Written by
--   cjm_analytics.journeys.materialize_touchpoints in ranges of customers (ADR 0126): this
--   query once per range (WHERE customer_id in the range), appended in order, so that each
--   join and sort holds part of the rows; the table is the query's.
with

sequence as (
    select * from int_touchpoint_sequence
),

known_events as (
    select * from events where customer_id is not null
),

stages as (
    select stage, stage_order from stage_definitions
),

final as (
    select
        known_events.source || ':' || known_events.event_id as touchpoint_id,
        known_events.event_id,
        sequence.customer_id,
        sequence.journey_id,
        sequence.touchpoint_seq,
        known_events.source,
        known_events.event_name,
        known_events.event_at,
        touchpoint_stages.stage,
        sequence.stage_order,
        coalesce(sequence.rule_channel, known_events.channel) as channel,
        sequence.journey_number,
        stages.stage as journey_stage,
        sequence.journey_stage_order,
        known_events.page_url,
        known_events.device,
        known_events.region,
        known_events.utm_source,
        known_events.utm_medium,
        known_events.utm_campaign,
        known_events.amount,
        known_events.csat_score,
        known_events.nps_score,
        known_events.outcome
    from sequence
    inner join known_events
        on known_events.source = sequence.source
        and known_events.event_id = sequence.event_id
    left join stages as touchpoint_stages on touchpoint_stages.stage_order = sequence.stage_order
    left join stages on stages.stage_order = sequence.journey_stage_order
    order by sequence.customer_id, sequence.customer_seq
)

select * from final
