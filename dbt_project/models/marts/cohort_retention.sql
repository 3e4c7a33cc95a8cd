{#- One row per cohort (month of a customer's first counted order) and month offset k, from 0 to
    the last month of the data range: how many of the cohort's customers had a counted order in
    cohort_month + k months. A plain table, rebuilt whole on every run. -#}
{{ config(materialized='table') }}

with activity as (
    select distinct customer_id, first_order_month as cohort_month, month
    from {{ ref('int_counted_orders') }}
    where customer_id is not null
),

cohorts as (
    select cohort_month, count(distinct customer_id) as cohort_size
    from activity
    group by cohort_month
),

months as (
    select month from {{ ref('int_months') }}
),

grid as (
    select c.cohort_month, c.cohort_size, m.month
    from cohorts c
    join months m on m.month >= c.cohort_month
),

active as (
    select cohort_month, month, count(distinct customer_id) as customers
    from activity
    group by cohort_month, month
)

select
    cast(g.cohort_month as date) as cohort_month,
    cast({{ dbt.datediff('g.cohort_month', 'g.month', 'month') }} as integer) as months_since_first,
    cast(coalesce(a.customers, 0) as bigint) as customers,
    {{ safe_ratio('coalesce(a.customers, 0)', 'g.cohort_size') }} as retention_rate
from grid g
left join active a
    on a.cohort_month = g.cohort_month
   and a.month = g.month
