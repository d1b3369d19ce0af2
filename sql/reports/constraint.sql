-- Report data: the what-if of each transition before the success stage (stage_what_if)
-- with the constraint marked (constraint_stage, finding 'constraint').
-- One row per transition; key transition.
with

what_if as (
    select * from stage_what_if where is_before_success
),

findings as (
    select transition from constraint_stage where finding = 'constraint'
),

final as (
    select
        what_if.transition,
        what_if.from_stage_order,
        what_if.reached_count,
        what_if.conversion_rate,
        what_if.benchmark_rate,
        what_if.benchmark_dimension,
        what_if.benchmark_segment_value,
        coalesce(what_if.extra_successes, 0) as extra_success_count,
        coalesce(what_if.extra_successes_low, 0) as extra_success_low,
        coalesce(what_if.extra_successes_high, 0) as extra_success_high,
        what_if.transition in (select transition from findings) as is_constraint
    from what_if
)

select * from final order by from_stage_order
