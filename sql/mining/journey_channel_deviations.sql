-- Touchpoints in a channel the designed journey does not expect at their stage (e.g. a
-- phone call at a stage meant to be web-only). Stages without `channels` in journey.yaml
-- accept every channel; a touchpoint without a channel at such a stage counts as unexpected.
-- Grain: one row per (journey_id, stage, channel). Key: those three columns.
with steps as (
    select journey_id, stage, channel from touchpoints where stage is not null
),

expected as (
    select stage, expected_channels from designed_stages where expected_channels is not null
),

unexpected as (
    select steps.journey_id, steps.stage, steps.channel
    from steps
    join expected using (stage)
    where not coalesce(list_contains(expected.expected_channels, steps.channel), false)
),

final as (
    select journey_id, stage, channel, count(*) as touchpoint_count
    from unexpected
    group by all
)

select * from final
