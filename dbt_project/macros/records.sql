{#- Record identity, duplicates and quarantine reasons, shared by the staging, clean and quality
    models. -#}

{#- The record key: the key values joined with '|', e.g. 'O0000123|2'. A missing part is '';
    a row missing every key value has no key (NULL). -#}
{% macro record_key(key_exprs) -%}
    {%- set parts = [] -%}
    {%- for e in key_exprs -%}
        {%- if not loop.first %}{% do parts.append("'|'") %}{% endif -%}
        {%- do parts.append("coalesce(" ~ dbt.cast(e, dbt.type_string()) ~ ", '')") -%}
    {%- endfor -%}
    case when {% for e in key_exprs %}{{ e }} is not null{% if not loop.last %} or {% endif %}{% endfor %}
        then {{ dbt.concat(parts) }} end
{%- endmacro %}

{#- Rank of a row among the rows sharing its key: 1 is the record that is kept. The winner is
    the row of the latest file (greatest _month; a reference table has one file), then the last
    line of that file. -#}
{% macro dedup_rank(key_columns) -%}
    row_number() over (
        partition by {{ key_columns | join(', ') }}
        order by _month desc, _source_file desc, _source_line desc
    )
{%- endmacro %}

{#- The first problem of a row, as two columns quarantine_reason and quarantine_column (both NULL
    for a good row). `checks` is an ordered list of (sql condition, reason, column): the first
    condition that is true names the problem. A condition that is NULL does not fire, so each check
    may assume the checks before it passed. -#}
{% macro quarantine_columns(checks) -%}
    case
        {%- for condition, reason, column in checks %}
        when {{ condition }} then '{{ reason | replace("'", "''") }}'
        {%- endfor %}
    end as quarantine_reason,
    case
        {%- for condition, reason, column in checks %}
        when {{ condition }} then '{{ column }}'
        {%- endfor %}
    end as quarantine_column
{%- endmacro %}
