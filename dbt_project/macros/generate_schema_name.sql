{#- Schemas are exactly staging, clean, quality and marts (not dbt's default main_marts), so
    analysts query marts.monthly_revenue whatever the target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
