{#- Building blocks of the quality models, one per table (or per table and column), so that
    quality.quarantine and quality.issues loop over raw_contract() instead of repeating SQL for
    each of the 8 tables. Every block yields the model's columns in the model's order. -#}

{#- quality.quarantine rows of one table: the lines the ingest could not read as records
    (stage 'ingest') and the staging rows with a quarantine_reason (stage 'clean'). -#}
{% macro quarantine_rows(table) -%}
    select
        '{{ table }}'                               as table_name,
        _month                                      as month,
        source_file,
        source_line,
        column_name,
        reason,
        record,
        {{ dbt.cast('null', dbt.type_string()) }}   as record_key,
        'ingest'                                    as stage
    from {{ source('raw', table ~ '_rejected_lines') }}

    union all

    select
        '{{ table }}'                               as table_name,
        _month                                      as month,
        _source_file                                as source_file,
        _source_line                                as source_line,
        quarantine_column                           as column_name,
        quarantine_reason                           as reason,
        raw_record                                  as record,
        record_key,
        'clean'                                     as stage
    from {{ ref('stg_' ~ table) }}
    where quarantine_reason is not null
{%- endmacro %}

{#- The staging rows of one table that reach the duplicate ranking (not quarantined), with
    their rank (1 = the row kept in clean, see dedup_rank). -#}
{% macro ranked_staging_rows(table) -%}
    select
        *,
        {{ dedup_rank(raw_contract()[table]['key']) }} as duplicate_rank
    from {{ ref('stg_' ~ table) }}
    where quarantine_reason is null
{%- endmacro %}

{#- One issue per losing row of a duplicated key: 'duplicate' when its raw values are those of
    the kept row (lineage aside), else 'conflicting_duplicate', whose detail lists the columns
    whose (normalised) values differ. `ranked` is a relation of ranked_staging_rows(table). -#}
{% macro duplicate_issues(table, ranked) -%}
    {%- set spec = raw_contract()[table] -%}
    {%- set differing = [] -%}
    {%- for c in spec['columns'] -%}
        {%- do differing.append("case when lost." ~ c ~ " is distinct from kept." ~ c ~ " then ' " ~ c ~ "' else '' end") -%}
    {%- endfor -%}
    select
        '{{ table }}'                                   as table_name,
        lost.record_key,
        case when lost.raw_record = kept.raw_record
            then 'duplicate' else 'conflicting_duplicate' end as issue,
        lost._month                                     as month,
        {{ dbt.cast('null', dbt.type_string()) }}       as column_name,
        lost._source_file                               as source_file,
        lost._source_line                               as source_line,
        case
            when lost.raw_record = kept.raw_record then
                {{ dbt.concat(["'same values as the kept row, '", "kept._source_file", "' line '", dbt.cast("kept._source_line", dbt.type_string())]) }}
            else
                {{ dbt.concat(["'kept instead: '", "kept._source_file", "' line '", dbt.cast("kept._source_line", dbt.type_string()),
                               "'; differing:'", "coalesce(nullif(" ~ dbt.concat(differing) ~ ", ''), ' only spacing or case')"]) }}
        end                                             as detail
    from {{ ranked }} as lost
    inner join {{ ranked }} as kept
        on  kept.duplicate_rank = 1
        {%- for k in spec['key'] %}
        and kept.{{ k }} = lost.{{ k }}
        {%- endfor %}
    where lost.duplicate_rank > 1
{%- endmacro %}

{#- One 'non_canonical_value' issue per clean row whose delivered categorical value needed
    normalising (trim, case, snake case, or an unlisted channel type counted as 'other').
    Staging keeps the delivered value as <column>_raw. -#}
{% macro non_canonical_issues(table, column, extra_condition=none) -%}
    select
        '{{ table }}'                                   as table_name,
        staged.record_key,
        'non_canonical_value'                           as issue,
        clean_rows._month                               as month,
        '{{ column }}'                                  as column_name,
        clean_rows._source_file                         as source_file,
        clean_rows._source_line                         as source_line,
        {{ dbt.concat(["'\"'", "staged." ~ column ~ "_raw", "'\" read as \"'", "coalesce(staged." ~ column ~ ", '')", "'\"'"]) }} as detail
    from {{ ref(table) }} as clean_rows
    inner join {{ ref('stg_' ~ table) }} as staged
        on  staged._source_file = clean_rows._source_file
        and staged._source_line = clean_rows._source_line
    where staged.{{ column }}_raw is not null
      and staged.{{ column }}_raw is distinct from staged.{{ column }}
      {%- if extra_condition %}
      and {{ extra_condition }}
      {%- endif %}
{%- endmacro %}

{#- The price_outlier rule, in one place: a unit price more than 10x, or less than 1/10, of the
    product's list_price (products with a list_price > 0 only; an unknown price is no outlier).
    quality.issues flags such lines price_outlier; int_order_lines carries it as is_price_outlier,
    so the marts can show the revenue of flagged lines (monthly_revenue.flagged_revenue). -#}
{% macro is_price_outlier(unit_price, list_price) -%}
    coalesce({{ list_price }} > 0
             and ({{ unit_price }} > 10 * {{ list_price }} or {{ unit_price }} * 10 < {{ list_price }}), false)
{%- endmacro %}
