{#- Calendar helpers of the marts: months as DATE (first day of the month), date and month
    spines, ISO day of week. Adapter-dispatched where the SQL differs (DuckDB today, Spark later). -#}

{#- The month of a date or timestamp, as a DATE holding the first day of the month. -#}
{% macro month_start(expr) -%}
    cast({{ dbt.date_trunc('month', expr) }} as date)
{%- endmacro %}

{#- The last day (DATE) of the month of a date. -#}
{% macro month_last_day(expr) -%}
    {{ dbt.last_day(expr, 'month') }}
{%- endmacro %}

{#- A 'YYYY-MM' partition key (the _month lineage column) as the DATE of its first day. -#}
{% macro month_key_to_date(month_key_expr) -%}
    cast({{ dbt.concat([month_key_expr, "'-01'"]) }} as date)
{%- endmacro %}

{#- A complete SELECT of one DATE column `alias`: every `datepart` (day, month) from start_expr to
    end_expr inclusive, for each row of from_relation (a CTE holding the bounds). No rows when a
    bound is NULL. -#}
{% macro date_series(start_expr, end_expr, datepart, alias, from_relation) -%}
    {{ return(adapter.dispatch('date_series', 'nexcart')(start_expr, end_expr, datepart, alias, from_relation)) }}
{%- endmacro %}

{% macro default__date_series(start_expr, end_expr, datepart, alias, from_relation) -%}
    select cast(d as date) as {{ alias }}
    from (
        select explode(sequence(cast({{ start_expr }} as date), cast({{ end_expr }} as date),
                                interval 1 {{ datepart }})) as d
        from {{ from_relation }}
    ) series
{%- endmacro %}

{% macro duckdb__date_series(start_expr, end_expr, datepart, alias, from_relation) -%}
    select cast(unnest(generate_series(cast({{ start_expr }} as timestamp),
                                       cast({{ end_expr }} as timestamp),
                                       interval 1 {{ datepart }})) as date) as {{ alias }}
    from {{ from_relation }}
{%- endmacro %}

{#- ISO day of week: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_day_of_week(date_expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'nexcart')(date_expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date_expr) -%}
    (((dayofweek({{ date_expr }}) + 5) % 7) + 1)
{%- endmacro %}

{% macro duckdb__iso_day_of_week(date_expr) -%}
    isodow({{ date_expr }})
{%- endmacro %}
