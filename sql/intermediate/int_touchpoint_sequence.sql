-- int_touchpoint_sequence: the order, journey and stage of every event of a known customer
-- (the narrow half of touchpoints: its windows, without the events' wide columns).
--
-- Grain: one row per event with a non-null customer_id (unmapped events included, with
--   stage_order NULL).
-- Key: (source, event_id); also (customer_id, customer_seq) and (journey_id, touchpoint_seq).
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
--   customer_seq: 1-based position in the customer's order;
--   stage_order: the matching stage rule's stage (NULL when none matches);
--   rule_channel: the matching stage rule's channel, when it sets one;
--   journey_stage_order: the furthest stage the journey had reached at this
--     touchpoint, this one included (NULL before its first mapped touchpoint).
--
-- Cost (ADR 0073, 0076, 0106): the five-key order is sorted once, on a narrow projection
--   (source_file as its rank among the files); the later windows order by that integer
--   (customer_seq) and carry no touchpoint_id (journey_id's md5 is computed at journey
--   starts only). touchpoints joins the wide columns in a statement of its own, so the
--   windows' memory is free before that join and its sort start.
with

source_files as (
    -- source_file's place in the order as a small integer: the window sorts no file paths
    select source_file, row_number() over (order by source_file) as file_order
    from (select distinct source_file from events where customer_id is not null)
),

known_event_keys as (
    select
        events.customer_id,
        events.event_at,
        events.source,
        source_files.file_order,
        events.source_row,
        events.source_event_seq,
        events.event_id
    from events
    left join source_files on source_files.source_file = events.source_file
    where events.customer_id is not null
),

stage_matches as (
    select * from int_stage_rule_matches
),

ordered as (
    -- the only sort by the full order: a narrow projection, numbered per customer
    select
        known_event_keys.customer_id,
        known_event_keys.event_at,
        known_event_keys.source,
        known_event_keys.event_id,
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
            known_event_keys.file_order,
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
        source,
        event_id,
        customer_id,
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
        source,
        event_id,
        customer_id,
        customer_seq,
        journey_id,
        cast(journey_number as bigint) as journey_number,
        touchpoint_seq,
        cast(stage_order as integer) as stage_order,
        cast(journey_stage_order as integer) as journey_stage_order,
        rule_channel
    from sequenced
)

select * from final
