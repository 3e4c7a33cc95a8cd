{#- The data-quality scorecard: per month and table (month NULL for a reference snapshot), the
    rows delivered and, for each of the five dimensions, the records affected and their rate,
    and an overall score 0-100 (formula in _quality_marts.yml).

    rows = raw rows + lines the CSV reader could not read, i.e. everything that was delivered.
    A record with several problems counts once per problem, so a rate is capped at 1 in the score. -#}

{%- set dimensions = ['validity', 'completeness', 'accuracy', 'consistency', 'anomaly'] -%}
{%- set weights = {'validity': 0.25, 'completeness': 0.25, 'accuracy': 0.20, 'consistency': 0.20, 'anomaly': 0.10} -%}

with delivered as (
    {% for table in raw_contract() %}
    select '{{ table }}' as table_name, _month as month, count(*) as n
    from {{ source('raw', table) }}
    group by _month
    union all
    select '{{ table }}' as table_name, _month as month, count(*) as n
    from {{ source('raw', table ~ '_rejected_lines') }}
    group by _month
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

row_counts as (
    select {{ month_key_to_date('month') }} as month, table_name, sum(n) as row_count
    from delivered
    group by month, table_name
),

problems as (
    select
        month,
        table_name,
        {%- for d in dimensions %}
        sum(case when dimension = '{{ d }}' then records else 0 end) as {{ d }}_issues{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ ref('data_quality_issues') }}
    group by month, table_name
),

joined as (
    select
        coalesce(r.month, p.month) as month,
        coalesce(r.table_name, p.table_name) as table_name,
        coalesce(r.row_count, 0) as row_count,
        {%- for d in dimensions %}
        coalesce(p.{{ d }}_issues, 0) as {{ d }}_issues{% if not loop.last %},{% endif %}
        {%- endfor %}
    from row_counts r
    full outer join problems p
        on p.table_name = r.table_name and p.month is not distinct from r.month
),

rated as (
    select
        *,
        {%- for d in dimensions %}
        {{ safe_ratio(d ~ '_issues', 'row_count') }} as {{ d }}_rate{% if not loop.last %},{% endif %}
        {%- endfor %}
    from joined
)

select
    cast(month as date) as month,
    cast(table_name as varchar) as table_name,
    cast(row_count as bigint) as rows,
    {%- for d in dimensions %}
    cast({{ d }}_issues as bigint) as {{ d }}_issues,
    cast({{ d }}_rate as double) as {{ d }}_rate,
    {%- endfor %}
    cast(case when row_count > 0 then round(100 * (
        {%- for d in dimensions %}
        {{ weights[d] }} * (1 - least(coalesce({{ d }}_rate, 0), 1)){% if not loop.last %} +{% endif %}
        {%- endfor %}
    ), 2) end as double) as overall_score
from rated
