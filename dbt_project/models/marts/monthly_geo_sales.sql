{#- One row per month, country and region (order geography, metrics.md) with counted orders. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_month_window('month', is_date=true) }}",
    tags=['monthly'],
) }}

select
    cast(month as date) as month,
    country,
    region,
    cast(count(*) as bigint) as orders,
    cast(count(distinct customer_id) as bigint) as customers,
    {{ money_round(money_sum('gross_revenue')) }} as gross_revenue
from {{ ref('int_counted_orders') }}
where {{ in_month_date_window('month') }}
group by month, country, region
