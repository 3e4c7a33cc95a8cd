{#- Text normalisation of raw values (raw keeps the bytes as delivered). -#}

{#- Trim surrounding whitespace; an empty or blank value is NULL. -#}
{% macro clean_text(expr) -%}
    nullif({{ nexcart.regex_replace_all(expr, '^\\s+|\\s+$', '') }}, '')
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
