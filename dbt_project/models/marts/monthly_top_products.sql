{#- One row per month and product sold that month (counted orders), ranked by the shown
    gross_revenue descending, then product_id: rank 1..n, no ties. -#}
{{ monthly_table_config('month', is_date=true) }}

with lines as (
    select * from {{ ref('int_order_lines') }}
    where is_counted and {{ in_month_date_window('month') }}
),

by_product as (
    select
        month,
        product_id,
        max(product_name) as product_name,
        max(category) as category,
        sum(quantity) as units,
        {{ money_round(money_sum('line_revenue')) }} as gross_revenue
    from lines
    group by month, product_id
)

select
    cast(month as date) as month,
    cast(row_number() over (partition by month order by gross_revenue desc, product_id) as integer) as rank,
    product_id,
    product_name,
    category,
    cast(units as bigint) as units,
    gross_revenue
from by_product
