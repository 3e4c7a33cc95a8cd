{#- Money in the marts (metrics.md: "summed exactly, shown rounded to 2 decimals").
    Amounts are summed in DECIMAL(38,4) (the clean layer holds at most 4 decimals, so every sum is
    exact) and rounded once, at the very end, to DECIMAL(18,2) (half away from zero).
    Never round an amount before summing it, never go through floating point. -#}

{#- An exact sum of a money expression: DECIMAL(38,4). -#}
{% macro money_sum(expr) -%}
    sum(cast({{ expr }} as decimal(38,4)))
{%- endmacro %}

{#- The one final rounding of an exact amount (at most 4 decimals) to the shown DECIMAL(18,2). -#}
{% macro money_round(expr) -%}
    cast(round({{ expr }}, 2) as decimal(18,2))
{%- endmacro %}

{#- An exact amount divided by a count (aov, 7-day average), rounded to the cent: DECIMAL(18,2),
    NULL when the divisor is 0 or NULL. DuckDB divides DECIMALs in DOUBLE (1.005 / 1 would
    round to 1.00), so the DuckDB shim divides in integer ten-thousandths instead. -#}
{% macro money_div(num, den) -%}
    {{ return(adapter.dispatch('money_div', 'nexcart')(num, den)) }}
{%- endmacro %}

{% macro default__money_div(num, den) -%}
    case when {{ den }} is null or {{ den }} = 0 then null
         else cast(round(cast({{ num }} as decimal(38,4)) / {{ den }}, 2) as decimal(18,2)) end
{%- endmacro %}

{% macro duckdb__money_div(num, den) -%}
    {%- set n -%} cast(cast({{ num }} as decimal(38,4)) * 10000 as hugeint) {%- endset -%}
    {%- set d -%} cast({{ den }} as hugeint) {%- endset -%}
    case when {{ den }} is null or {{ den }} = 0 then null
         else cast(
             cast(sign({{ n }}) * sign({{ d }})
                  * ((2 * abs({{ n }}) + 100 * abs({{ d }})) // (200 * abs({{ d }})))
                  as decimal(38,0))
             * cast(0.01 as decimal(3,2))
             as decimal(18,2)) end
{%- endmacro %}
