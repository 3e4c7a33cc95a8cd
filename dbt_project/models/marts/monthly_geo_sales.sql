{#- One row per month, country and region (order geography, metrics.md) with counted orders. -#}
{{ monthly_table_config('month', is_date=true) }}

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
