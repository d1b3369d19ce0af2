-- Report data: the stage-level directly-follows graph with counts and times, and the
-- position of each stage on the map. One row per (from_stage, to_stage); key both.
-- Parameter ?: how many edges to keep (the most frequent).
with

edges as (
    select * from dfg_stage_edges
),

stage_positions as (
    select stage, stage_order from stage_funnel
),

ranked as (
    select
        edges.from_stage,
        edges.to_stage,
        cast(edges.transition_count as bigint) as transition_count,
        edges.median_duration_seconds,
        edges.p90_duration_seconds,
        row_number() over (order by edges.transition_count desc, edges.from_stage, edges.to_stage) as edge_rank
    from edges
),

final as (
    select
        ranked.*,
        from_position.stage_order as from_stage_order,
        to_position.stage_order as to_stage_order
    from ranked
    left join stage_positions as from_position on from_position.stage = ranked.from_stage
    left join stage_positions as to_position on to_position.stage = ranked.to_stage
    where edge_rank <= ?
)

select * from final order by edge_rank
