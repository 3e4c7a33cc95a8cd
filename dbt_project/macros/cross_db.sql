{#- Adapter-dispatched shims, so the models stay portable (DuckDB today, Spark later). -#}

{#- dbt.safe_cast is a plain cast on dbt-duckdb: an unparsable value would fail the whole build.
    Here it yields NULL, and the staging models turn that NULL into a quarantine reason. -#}
{% macro try_cast(expr, type) -%}
    {{ return(adapter.dispatch('try_cast', 'nexcart')(expr, type)) }}
{%- endmacro %}
{% macro default__try_cast(expr, type) -%}
    {{ dbt.safe_cast(expr, type) }}
{%- endmacro %}
{% macro duckdb__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}
