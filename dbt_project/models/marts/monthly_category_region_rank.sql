{#- One row per month, region (order geography: country and region, since the same region code
    exists in several countries, e.g. WA) and product category with counted orders; rank 1..n
    within the month and region by the shown gross_revenue descending, then category. -#}
{{ monthly_table_config('month', is_date=true) }}

with by_category as (
    select
        month,
        country,
        region,
        category,
        {{ money_round(money_sum('line_revenue')) }} as gross_revenue
    from {{ ref('int_order_lines') }}
    where is_counted and {{ in_month_date_window('month') }}
    group by month, country, region, category
)

select
    cast(month as date) as month,
    country,
    region,
    category,
    gross_revenue,
    cast(row_number() over (partition by month, country, region order by gross_revenue desc, category) as integer) as rank
from by_category
