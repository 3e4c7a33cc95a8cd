{#- Parsing the contract's text values into types. Each parser returns NULL for text that is not
    in the contract's format (nothing is guessed: no decimal comma, no thousands separator, no
    currency symbol, no DD/MM/YYYY); the staging models turn "text present, value NULL" into the
    quarantine reason of unparsable_reason(type). Input is text already trimmed by clean_text. -#}

{#- Money and other decimals: DECIMAL(18,4) (the contract allows at most 4 decimals). -#}
{% macro decimal_type() -%}decimal(18,4){%- endmacro %}

{#- Why a value failed to parse, naming the format the contract expects. -#}
{% macro unparsable_reason(type) -%}
    {{ return({
        'timestamp': 'unparsable_timestamp: expected YYYY-MM-DD HH:MM[:SS][+HH:MM]',
        'date': 'unparsable_date: expected YYYY-MM-DD',
        'decimal': "unparsable_decimal: expected digits with '.' as decimal separator, e.g. 1234.56",
        'integer': 'unparsable_integer: expected a whole number, e.g. 42',
    }[type]) }}
{%- endmacro %}

{#- A contract timestamp -> store-local TIMESTAMP.
    'YYYY-MM-DD HH:MM[:SS[.ffffff]]', 'T' or a space between date and time, optional UTC offset
    ('Z', '+HH', '+HHMM', '+HH:MM'). Without an offset the value already is store-local time (the
    common case, a plain cast); with one it is moved to UTC and then to var('timezone'). -#}
{% macro parse_timestamp(text) -%}
    {%- set local_re = '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]{1,6})?)?' -%}
    {#- groups: 1 local part, 2 'Z' or the offset, 3 sign, 4 hours, 5 minutes -#}
    {%- set offset_re = '(' ~ local_re ~ ')(Z|([+-])(0[0-9]|1[0-4]):?([0-5][0-9])?)' -%}
    {%- set tz = var('timezone') | trim -%}
    {%- set wall_clock = nexcart.try_cast(nexcart.regex_extract(text, offset_re, 1), dbt.type_timestamp()) -%}
    {%- set offset_minutes -%}
        case when {{ nexcart.regex_extract(text, offset_re, 2) }} = 'Z' then 0 else
            (case when {{ nexcart.regex_extract(text, offset_re, 3) }} = '-' then -1 else 1 end)
            * (cast({{ nexcart.regex_extract(text, offset_re, 4) }} as {{ dbt.type_int() }}) * 60
               + coalesce({{ nexcart.try_cast("nullif(" ~ nexcart.regex_extract(text, offset_re, 5) ~ ", '')", dbt.type_int()) }}, 0))
        end
    {%- endset -%}
    {%- set utc = dbt.dateadd('minute', '-1 * (' ~ offset_minutes ~ ')', wall_clock) -%}
    case
        when {{ nexcart.regex_full_match(text, local_re) }}
            then {{ nexcart.try_cast(text, dbt.type_timestamp()) }}
        when {{ nexcart.regex_full_match(text, offset_re) }}
            then {% if tz in ('UTC', 'Etc/UTC') %}{{ utc }}{% else %}{{ nexcart.utc_to_local(utc, tz) }}{% endif %}
    end
{%- endmacro %}

{#- A contract date: 'YYYY-MM-DD' only (an impossible date such as 2024-02-30 gives NULL). -#}
{% macro parse_date(text) -%}
    case when {{ nexcart.regex_full_match(text, '[0-9]{4}-[0-9]{2}-[0-9]{2}') }}
        then {{ nexcart.try_cast(text, 'date') }} end
{%- endmacro %}

{#- A contract decimal: optional sign, digits, '.' as the only separator -> DECIMAL(18,4). -#}
{% macro parse_decimal(text) -%}
    case when {{ nexcart.regex_full_match(text, '[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)') }}
        then {{ nexcart.try_cast(text, nexcart.decimal_type()) }} end
{%- endmacro %}

{#- A contract integer: optional sign and digits only ('3.0' is not an integer). -#}
{% macro parse_integer(text) -%}
    case when {{ nexcart.regex_full_match(text, '[+-]?[0-9]+') }}
        then {{ nexcart.try_cast(text, dbt.type_int()) }} end
{%- endmacro %}
