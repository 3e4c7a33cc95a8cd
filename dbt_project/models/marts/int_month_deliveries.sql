{#- Ephemeral: which months had data delivered, one row per month (DATE, first day) that the
    ingest logged or that has raw rows. From raw._ingest_log, where every raw monthly asset
    records each (table, month) it processed: outcome 'loaded' (a file was loaded, possibly
    header-only), 'not_delivered' (no file) or 'failed' (the file could not be loaded). The current
    state of a (table, month) is its rows with the newest _loaded_at.
    data_delivered is false when every monthly table's current outcome is not_delivered: an empty
    month (the shop sold nothing), shown with zero revenue and "no data delivered". A month with
    raw rows or lines counts as delivered whatever its log says (a warehouse loaded by hand). -#}
{{ config(materialized='ephemeral') }}

with logged as (
    select
        table_name,
        _month,
        outcome,
        _loaded_at,
        max(_loaded_at) over (partition by table_name, _month) as newest_loaded_at
    from {{ source('raw', '_ingest_log') }}
    where _month is not null
),

current_state as (
    select _month, case when outcome = 'not_delivered' then 0 else 1 end as delivered
    from logged
    where _loaded_at = newest_loaded_at
),

raw_months as (
    {% for table, spec in raw_contract().items() if spec['monthly'] %}
    select distinct _month, 1 as delivered from {{ source('raw', table) }}
    union all
    select distinct _month, 1 as delivered from {{ source('raw', table ~ '_rejected_lines') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

all_states as (
    select _month, delivered from current_state
    union all
    select _month, delivered from raw_months where _month is not null
)

select
    {{ month_key_to_date('_month') }} as month,
    max(delivered) = 1 as data_delivered
from all_states
group by _month
