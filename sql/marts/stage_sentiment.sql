-- stage_sentiment: the emotion line of the journey map, from data.
--
-- Grain: one row per configured stage. Key: stage_order (also stage).
--
-- A touchpoint counts at the furthest stage its journey had reached at that moment
-- (touchpoints.journey_stage), so a survey or call that no stage rule maps still counts
-- where the customer was; touchpoints before the journey's first mapped one are left out.
-- Definitions:
--   csat_avg / nps_avg: mean of the non-NULL scores, with csat_count / nps_count;
--   nps_promoter_rate / nps_detractor_rate: share of NPS answers 9-10 / 0-6;
--   call_count: touchpoints whose event name is a call outcome (emotion.call_events);
--   failed_call_count: those in emotion.failed_call_events (abandoned in queue, voicemail);
--   failed_call_rate = failed_call_count / call_count;
--   outcome_count: touchpoints with a non-NULL outcome; negative_outcome_count: those whose
--   outcome is in emotion.negative_outcomes; negative_outcome_rate = negative / outcome_count.
with

staged_touchpoints as (
    select * from touchpoints where journey_stage_order is not null
),

stages as (
    select * from stage_definitions
),

event_kinds as (
    select * from emotion_event_kinds
),

classified as (
    select
        staged_touchpoints.journey_stage_order as stage_order,
        staged_touchpoints.journey_id,
        staged_touchpoints.csat_score,
        staged_touchpoints.nps_score,
        staged_touchpoints.outcome,
        staged_touchpoints.event_name in (
            select value from event_kinds where kind = 'call'
        ) as is_call,
        staged_touchpoints.event_name in (
            select value from event_kinds where kind = 'failed_call'
        ) as is_failed_call,
        staged_touchpoints.outcome in (
            select value from event_kinds where kind = 'negative_outcome'
        ) as is_negative_outcome
    from staged_touchpoints
),

per_stage as (
    select
        stage_order,
        count(*) as touchpoint_count,
        count(distinct journey_id) as journey_count,
        count(csat_score) as csat_count,
        avg(csat_score) as csat_avg,
        count(nps_score) as nps_count,
        avg(nps_score) as nps_avg,
        count(*) filter (where nps_score >= 9) as nps_promoter_count,
        count(*) filter (where nps_score <= 6) as nps_detractor_count,
        count(*) filter (where is_call) as call_count,
        count(*) filter (where is_failed_call) as failed_call_count,
        count(outcome) as outcome_count,
        count(*) filter (where is_negative_outcome) as negative_outcome_count
    from classified
    group by stage_order
),

final as (
    select
        stages.stage,
        stages.stage_order,
        coalesce(per_stage.touchpoint_count, 0) as touchpoint_count,
        coalesce(per_stage.journey_count, 0) as journey_count,
        coalesce(per_stage.csat_count, 0) as csat_count,
        per_stage.csat_avg,
        coalesce(per_stage.nps_count, 0) as nps_count,
        per_stage.nps_avg,
        per_stage.nps_promoter_count / nullif(per_stage.nps_count, 0) as nps_promoter_rate,
        per_stage.nps_detractor_count / nullif(per_stage.nps_count, 0) as nps_detractor_rate,
        coalesce(per_stage.call_count, 0) as call_count,
        coalesce(per_stage.failed_call_count, 0) as failed_call_count,
        per_stage.failed_call_count / nullif(per_stage.call_count, 0) as failed_call_rate,
        coalesce(per_stage.outcome_count, 0) as outcome_count,
        coalesce(per_stage.negative_outcome_count, 0) as negative_outcome_count,
        per_stage.negative_outcome_count / nullif(per_stage.outcome_count, 0)
            as negative_outcome_rate
    from stages
    left join per_stage on per_stage.stage_order = stages.stage_order
    order by stages.stage_order
)

select * from final
