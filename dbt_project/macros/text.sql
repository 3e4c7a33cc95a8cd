{#- Text normalisation of raw values (raw keeps the bytes as delivered). -#}

{#- Trim surrounding whitespace; an empty or blank value is NULL. -#}
{% macro clean_text(expr) -%}
    nullif({{ nexcart.regex_replace_all(expr, '^\\s+|\\s+$', '') }}, '')
{%- endmacro %}

{#- The text of a typed value (a number, date or timestamp): trimmed, and NULL when empty or when
    it is one of the spreadsheet spellings of "no value", in any case: NULL, N/A, NA, NONE, '-'.
    Only typed columns read these words as "no value": in a text column they are data (a city
    may be called 'NA'), so text columns use clean_text. -#}
{% macro clean_typed_text(expr) -%}
    case when upper({{ nexcart.clean_text(expr) }}) in {{ nexcart.sql_list(nexcart.no_value_spellings()) }}
        then null else {{ nexcart.clean_text(expr) }} end
{%- endmacro %}

{#- The spellings of "no value" that clean_typed_text reads as NULL (compared in upper case). -#}
{% macro no_value_spellings() -%}
    {{ return(['NULL', 'N/A', 'NA', 'NONE', '-']) }}
{%- endmacro %}

{#- A categorical value (status, kind, channel_type): trimmed, lower case. -#}
{% macro normalise_category(expr) -%}
    lower({{ nexcart.clean_text(expr) }})
{%- endmacro %}

{#- A free-text categorical value as lower snake case: 'Credit Card ' -> 'credit_card',
    'Apple-Pay' -> 'apple_pay'. Runs of anything but letters and digits become one '_'. -#}
{% macro snake_case(expr) -%}
    nullif({{ nexcart.regex_replace_all(nexcart.regex_replace_all('lower(' ~ nexcart.clean_text(expr) ~ ')', '[^a-z0-9]+', '_'), '^_+|_+$', '') }}, '')
{%- endmacro %}

{#- A pragmatic well-formedness check, not a deliverability one: local@domain.tld.
    NULL when there is no email. -#}
{% macro is_valid_email(expr) -%}
    case when {{ expr }} is not null then
        {{ nexcart.regex_full_match(expr, "[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:[.][A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*[.][A-Za-z]{2,}") }}
    end
{%- endmacro %}

{#- Phone: only digits, spaces, '+', '-', '(', ')', '.', and 7 to 15 digits (E.164 allows 15).
    NULL when there is no phone. -#}
{% macro is_valid_phone(expr) -%}
    case when {{ expr }} is not null then
        {{ nexcart.regex_full_match(expr, '[0-9 +().-]+') }}
        and {{ dbt.length(nexcart.regex_replace_all(expr, '[^0-9]', '')) }} between 7 and 15
    end
{%- endmacro %}
