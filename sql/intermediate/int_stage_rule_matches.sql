-- int_stage_rule_matches: the stage of each event, by the first matching stage rule.
--
-- Grain: one row per event of a known customer that matches at least one stage rule.
-- Key: (source, event_id).
--
-- A rule matches an event when every part it gives matches (NULL parts match anything):
--   source, event name, url_pattern (RE2 regular expression searched in page_url), and
--   every `where:` condition (the event's value equals one of the condition's values as
--   text, or as a number: "9" matches 9.0). Condition fields are canonical columns or keys
--   of the `properties` JSON (json_path, built by cjm_analytics.stages).
-- When several rules match, the lowest rule_priority (config order: stage by stage, rule
-- by rule) wins, so an earlier stage takes precedence.
-- Rules are data (stage_rules, stage_rule_conditions): no config value is SQL text.
with

known_events as (
    -- narrow: this CTE is read several times, so DuckDB materializes it (ADR 0076)
    select source, event_id, event_name, page_url from events where customer_id is not null
),

condition_events as (
    select * from events where customer_id is not null
),

rules as (
    select * from stage_rules
),

rule_conditions as (
    select * from stage_rule_conditions
),

event_kinds as (
    -- the few distinct (source, event name) pairs: rules are matched to these, not to
    -- every event, so events join their rules by equality (a hash join)
    select distinct source, event_name from known_events
),

kind_rules as (
    select
        event_kinds.source as event_source,
        event_kinds.event_name as event_event_name,
        rules.*
    from event_kinds
    inner join rules
        on (rules.source is null or rules.source = event_kinds.source)
        and (rules.event_name is null or rules.event_name = event_kinds.event_name)
),

url_candidates as (
    -- each distinct (rule, URL) once
    select
        kind_rules.rule_id,
        coalesce(known_events.page_url, '') as page_url
    from known_events
    inner join kind_rules
        on kind_rules.event_source is not distinct from known_events.source
        and kind_rules.event_event_name is not distinct from known_events.event_name
    where kind_rules.url_pattern is not null
    group by kind_rules.rule_id, coalesce(known_events.page_url, '')
),

url_matches as (
    -- stage_rule_url_matches (cjm_analytics.stages.define_url_matcher) holds each rule's
    -- url_pattern as a bound variable, compiled once; a pattern read from a column would be
    -- compiled for every row (ADR 0076)
    select rule_id, page_url
    from url_candidates
    where stage_rule_url_matches(page_url, rule_id)
),

candidate_matches as (
    select
        known_events.source,
        known_events.event_id,
        kind_rules.rule_id,
        kind_rules.rule_priority,
        kind_rules.stage,
        kind_rules.stage_order,
        kind_rules.channel as rule_channel,
        kind_rules.condition_count
    from known_events
    inner join kind_rules
        on kind_rules.event_source is not distinct from known_events.source
        and kind_rules.event_event_name is not distinct from known_events.event_name
    left join url_matches
        on url_matches.rule_id = kind_rules.rule_id
        and url_matches.page_url = coalesce(known_events.page_url, '')
    where kind_rules.url_pattern is null or url_matches.rule_id is not null
),

condition_values as (
    -- the event's value of each condition field, as text
    select
        candidates.source,
        candidates.event_id,
        candidates.rule_id,
        rule_conditions.condition_id,
        rule_conditions.value as accepted_value,
        case
            when rule_conditions.is_property
                then json_extract_string(condition_events.properties, rule_conditions.json_path)
            when rule_conditions.field = 'source' then condition_events.source
            when rule_conditions.field = 'event_name' then condition_events.event_name
            when rule_conditions.field = 'channel' then condition_events.channel
            when rule_conditions.field = 'page_url' then condition_events.page_url
            when rule_conditions.field = 'device' then condition_events.device
            when rule_conditions.field = 'region' then condition_events.region
            when rule_conditions.field = 'utm_source' then condition_events.utm_source
            when rule_conditions.field = 'utm_medium' then condition_events.utm_medium
            when rule_conditions.field = 'utm_campaign' then condition_events.utm_campaign
            when rule_conditions.field = 'amount' then cast(condition_events.amount as varchar)
            when rule_conditions.field = 'csat_score' then cast(condition_events.csat_score as varchar)
            when rule_conditions.field = 'nps_score' then cast(condition_events.nps_score as varchar)
            when rule_conditions.field = 'outcome' then condition_events.outcome
        end as event_value
    from (select * from candidate_matches where condition_count > 0) as candidates
    inner join rule_conditions on rule_conditions.rule_id = candidates.rule_id
    inner join condition_events
        on condition_events.source = candidates.source
        and condition_events.event_id = candidates.event_id
),

satisfied_conditions as (
    select
        source,
        event_id,
        rule_id,
        count(distinct condition_id) as satisfied_count
    from condition_values
    where
        event_value = accepted_value
        or try_cast(event_value as double) = try_cast(accepted_value as double)
    group by source, event_id, rule_id
),

matching_rules as (
    select candidate_matches.*
    from candidate_matches
    left join satisfied_conditions
        on satisfied_conditions.source = candidate_matches.source
        and satisfied_conditions.event_id = candidate_matches.event_id
        and satisfied_conditions.rule_id = candidate_matches.rule_id
    where coalesce(satisfied_conditions.satisfied_count, 0) = candidate_matches.condition_count
),

final as (
    select
        source,
        event_id,
        rule_id,
        stage,
        stage_order,
        rule_channel
    from matching_rules
    qualify row_number() over (
        partition by source, event_id order by rule_priority, rule_id
    ) = 1
)

select * from final
