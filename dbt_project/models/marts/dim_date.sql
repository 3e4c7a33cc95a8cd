{#- One row per calendar day of every month of the data range: the months of the orders
    (int_months), the transactions and the inventory snapshots, whole months. -#}
{{ config(materialized='table') }}

with months as (
    select month from {{ ref('int_months') }}
    union all
    select month from {{ ref('int_transactions') }}
    union all
    select month from {{ ref('int_inventory_daily') }}
),

bounds as (
    select min(month) as first_day, {{ month_last_day('max(month)') }} as last_day
    from months
),

days as (
    {{ date_series('first_day', 'last_day', 'day', 'date_day', 'bounds') }}
)

select
    cast(date_day as date) as date,
    cast(extract(year from date_day) as integer) as year,
    cast(extract(quarter from date_day) as integer) as quarter,
    {{ month_start('date_day') }} as month,
    cast(extract(month from date_day) as integer) as month_of_year,
    cast(extract(day from date_day) as integer) as day_of_month,
    cast({{ iso_day_of_week('date_day') }} as integer) as day_of_week,
    {{ iso_day_of_week('date_day') }} in (6, 7) as is_weekend
from days
