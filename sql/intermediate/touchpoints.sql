-- touchpoints: every event of a known customer, mapped to a stage and cut into journeys.
--
-- Grain: one row per event with a non-null customer_id (unmapped events included, with
--   stage NULL: process mining needs the whole log; they are counted in unmapped_events).
-- Key: touchpoint_id (= source || ':' || event_id); also (journey_id, touchpoint_seq).
--
-- Definitions:
--   order of a customer's events: event_at, then source, source_file, source_row,
--     source_event_seq, event_id (source_row breaks ties between events at the same instant,
--     source_event_seq between the events one row gives, in their listed order: ADR 0063);
--   journey: a new journey starts at a customer's first event and at every event that
--     follows the previous one by more than getvariable('journey_inactivity_seconds');
--   journey_number: 1 for the customer's first journey in the data, 2 for the next...;
--   journey_id: first 16 hex digits of md5(customer_id, first touchpoint_id), stable across
--     nights while the journey's first touchpoint does not change (ADR 0003);
--   touchpoint_seq: 1-based position inside the journey;
--   channel: the matching rule's channel when it sets one, else the event's channel;
--   journey_stage / journey_stage_order: the furthest stage the journey had reached at this
--     touchpoint, this one included (NULL before its first mapped touchpoint).
--
-- Cost (ADR 0073, 0076): the five-key order is sorted once, on a narrow projection keyed by
--   the events rowid; the later windows order by that integer (customer_seq), carry no
--   touchpoint_id (journey_id's md5 is computed at journey starts only), and the wide
--   columns are joined back by the rowid at the end.
with

known_events as (
    select rowid as event_key, * from events where customer_id is not null
),

known_event_keys as (
    select
        rowid as event_key,
        customer_id,
        event_at,
        source,
        source_file,
        source_row,
        source_event_seq,
        event_id
    from events
    where customer_id is not null
),

stage_matches as (
    select * from int_stage_rule_matches
),

stages as (
    select stage, stage_order from stage_definitions
),

ordered as (
    -- the only sort by the full order: a narrow projection, numbered per customer
    select
        known_event_keys.event_key,
        known_event_keys.customer_id,
        known_event_keys.event_at,
        known_event_keys.source,
        known_event_keys.event_id,
        stage_matches.stage,
        stage_matches.stage_order,
        stage_matches.rule_channel,
        row_number() over customer_order as customer_seq,
        lag(known_event_keys.event_at) over customer_order as previous_event_at
    from known_event_keys
    left join stage_matches
        on stage_matches.source = known_event_keys.source
        and stage_matches.event_id = known_event_keys.event_id
    window customer_order as (
        partition by known_event_keys.customer_id
        order by
            known_event_keys.event_at,
            known_event_keys.source,
            known_event_keys.source_file,
            known_event_keys.source_row,
            known_event_keys.source_event_seq,
            known_event_keys.event_id
    )
),

journey_starts as (
    select
        *,
        case
            when previous_event_at is null then 1
            when epoch(event_at) - epoch(previous_event_at)
                > getvariable('journey_inactivity_seconds') then 1
            else 0
        end as is_journey_start
    from ordered
),

journey_keys as (
    -- journey_id is computed at journey starts only, then spread to the journey
    select
        event_key,
        customer_id,
        stage,
        stage_order,
        rule_channel,
        customer_seq,
        is_journey_start,
        case
            when is_journey_start = 1
                then left(md5(customer_id || chr(31) || source || ':' || event_id), 16)
        end as started_journey_id
    from journey_starts
),

numbered as (
    -- windows from here on order by the integer customer_seq, not the five keys
    select
        *,
        sum(is_journey_start) over (
            partition by customer_id
            order by customer_seq
            rows between unbounded preceding and current row
        ) as journey_number
    from journey_keys
),

sequenced as (
    select
        *,
        row_number() over journey_order as touchpoint_seq,
        first_value(started_journey_id) over journey_order as journey_id,
        max(stage_order) over (
            journey_order rows between unbounded preceding and current row
        ) as journey_stage_order
    from numbered
    window journey_order as (
        partition by customer_id, journey_number
        order by customer_seq
    )
),

final as (
    select
        known_events.source || ':' || known_events.event_id as touchpoint_id,
        known_events.event_id,
        sequenced.customer_id,
        sequenced.journey_id,
        sequenced.touchpoint_seq,
        known_events.source,
        known_events.event_name,
        known_events.event_at,
        sequenced.stage,
        cast(sequenced.stage_order as integer) as stage_order,
        coalesce(sequenced.rule_channel, known_events.channel) as channel,
        cast(sequenced.journey_number as bigint) as journey_number,
        stages.stage as journey_stage,
        cast(sequenced.journey_stage_order as integer) as journey_stage_order,
        known_events.page_url,
        known_events.device,
        known_events.region,
        known_events.utm_source,
        known_events.utm_medium,
        known_events.utm_campaign,
        known_events.amount,
        known_events.csat_score,
        known_events.nps_score,
        known_events.outcome,
        known_events.properties,
        known_events.source_file,
        known_events.source_row,
        known_events.source_event_seq
    from sequenced
    inner join known_events on known_events.event_key = sequenced.event_key
    left join stages on stages.stage_order = sequenced.journey_stage_order
    order by sequenced.customer_id, sequenced.customer_seq
)

select * from final
