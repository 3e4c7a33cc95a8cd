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

{#- Does the whole text match the regular expression? (RE2 on DuckDB, Java regex elsewhere.)
    Patterns are written with [0-9]-style classes; a backslash is escaped for dialects whose
    string literals interpret it. NULL text gives NULL. -#}
{% macro regex_full_match(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_full_match', 'nexcart')(expr, pattern)) }}
{%- endmacro %}
{% macro default__regex_full_match(expr, pattern) -%}
    ({{ expr }} rlike '^(?:{{ pattern | replace("\\", "\\\\") | replace("'", "''") }})$')
{%- endmacro %}
{% macro duckdb__regex_full_match(expr, pattern) -%}
    regexp_full_match({{ expr }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{#- The text of capture group `group` of the first match ('' when the group did not take part). -#}
{% macro regex_extract(expr, pattern, group) -%}
    {{ return(adapter.dispatch('regex_extract', 'nexcart')(expr, pattern, group)) }}
{%- endmacro %}
{% macro default__regex_extract(expr, pattern, group) -%}
    regexp_extract({{ expr }}, '{{ pattern | replace("\\", "\\\\") | replace("'", "''") }}', {{ group }})
{%- endmacro %}
{% macro duckdb__regex_extract(expr, pattern, group) -%}
    regexp_extract({{ expr }}, '{{ pattern | replace("'", "''") }}', {{ group }})
{%- endmacro %}

{#- Replace every match of the regular expression (DuckDB replaces only the first without 'g'). -#}
{% macro regex_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regex_replace_all', 'nexcart')(expr, pattern, replacement)) }}
{%- endmacro %}
{% macro default__regex_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern | replace("\\", "\\\\") | replace("'", "''") }}', '{{ replacement }}')
{%- endmacro %}
{% macro duckdb__regex_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern | replace("'", "''") }}', '{{ replacement }}', 'g')
{%- endmacro %}

{#- A UTC wall-clock timestamp as wall-clock time in time zone `tz` (an IANA name). -#}
{% macro utc_to_local(ts, tz) -%}
    {{ return(adapter.dispatch('utc_to_local', 'nexcart')(ts, tz)) }}
{%- endmacro %}
{% macro default__utc_to_local(ts, tz) -%}
    from_utc_timestamp({{ ts }}, '{{ tz }}')
{%- endmacro %}
{% macro duckdb__utc_to_local(ts, tz) -%}
    timezone('{{ tz }}', timezone('UTC', {{ ts }}))
{%- endmacro %}

{#- The given columns of a row as one JSON object text, {"col": value, ...} (NULL -> null). -#}
{% macro row_as_json(columns) -%}
    {{ return(adapter.dispatch('row_as_json', 'nexcart')(columns)) }}
{%- endmacro %}
{% macro default__row_as_json(columns) -%}
    to_json(named_struct({% for c in columns %}'{{ c }}', {{ c }}{% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}
{% macro duckdb__row_as_json(columns) -%}
    cast(json_object({% for c in columns %}'{{ c }}', {{ c }}{% if not loop.last %}, {% endif %}{% endfor %}) as varchar)
{%- endmacro %}
