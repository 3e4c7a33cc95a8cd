-- Records that are in the clean layer (or collapsed into one that is) but deserve a look, one row
-- per record and issue:
--   duplicate / conflicting_duplicate: a losing row of a duplicated key (it counts once, the kept
--     row is the latest file's last line); identical raw values = duplicate.
--   orphan_order_item / orphan_transaction: order_id not in clean.orders (any month).
--   orphan_product: an order line's product_id not in clean.products (when it has rows).
--   orphan_customer: an order's customer_id not in clean.customers; only checked when a customers
--     snapshot was delivered (raw.customers not empty): without one every customer is unknown.
--   invalid_email / invalid_phone: not well formed (clean.customers flags).
--   unknown_status: order status missing or not in the contract's list, counted as 'placed'.
--   non_canonical_value: a categorical value that needed normalising.
--   price_outlier: unit_price more than 10x, or less than 1/10, of the product's list_price
--     (macro is_price_outlier, shared with the marts' flagged revenue).
-- A full rebuild every run (all months), so it always matches the clean layer.

{%- set order_statuses = contract_values('order_status') | join(', ') %}
{#- an unknown order status is reported as unknown_status, not also as non-canonical -#}
{%- set non_canonical_conditions = {'orders.status': 'not staged.status_is_unknown'} %}

with

{% for table in raw_contract() -%}
{{ table }}_ranked as (
    {{ ranked_staging_rows(table) }}
),

{% endfor -%}

duplicates as (
    {% for table in raw_contract() %}
    {{ duplicate_issues(table, table ~ '_ranked') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

non_canonical_values as (
    {% for table, spec in raw_contract().items() if spec['categorical'] %}
    {%- set outer_last = loop.last %}
    {%- for column in spec['categorical'] %}
    {{ non_canonical_issues(table, column, non_canonical_conditions.get(table ~ '.' ~ column)) }}
    {% if not (outer_last and loop.last) %}union all{% endif %}
    {%- endfor %}
    {%- endfor %}
),

orphan_order_items as (
    select
        'order_items'                                   as table_name,
        {{ record_key(['items.order_id', 'items.line_number']) }} as record_key,
        'orphan_order_item'                             as issue,
        items._month                                    as month,
        'order_id'                                      as column_name,
        items._source_file                              as source_file,
        items._source_line                              as source_line,
        {{ dbt.concat(["'order '", "items.order_id", "' is not in clean.orders'"]) }} as detail
    from {{ ref('order_items') }} as items
    where not exists (
        select 1 from {{ ref('orders') }} as orders where orders.order_id = items.order_id
    )
),

orphan_customers as (
    select
        'orders'                                        as table_name,
        {{ record_key(['orders.order_id']) }}           as record_key,
        'orphan_customer'                               as issue,
        orders._month                                   as month,
        'customer_id'                                   as column_name,
        orders._source_file                             as source_file,
        orders._source_line                             as source_line,
        {{ dbt.concat(["'customer '", "orders.customer_id", "' is not in clean.customers'"]) }} as detail
    from {{ ref('orders') }} as orders
    where orders.customer_id is not null
      and not exists (
          select 1 from {{ ref('customers') }} as customers
          where customers.customer_id = orders.customer_id
      )
      and exists (select 1 from {{ source('raw', 'customers') }})
),

orphan_products as (
    -- the rows behind the gate "order lines covered by products": checked only when a products
    -- snapshot has rows (without one every product is unknown, and the gate is skipped)
    select
        'order_items'                                   as table_name,
        {{ record_key(['items.order_id', 'items.line_number']) }} as record_key,
        'orphan_product'                                as issue,
        items._month                                    as month,
        'product_id'                                    as column_name,
        items._source_file                              as source_file,
        items._source_line                              as source_line,
        {{ dbt.concat(["'product '", "items.product_id", "' is not in clean.products'"]) }} as detail
    from {{ ref('order_items') }} as items
    where not exists (
        select 1 from {{ ref('products') }} as products where products.product_id = items.product_id
    )
      and exists (select 1 from {{ ref('products') }})
),

orphan_transactions as (
    select
        'transactions'                                  as table_name,
        {{ record_key(['transactions.transaction_id']) }} as record_key,
        'orphan_transaction'                            as issue,
        transactions._month                             as month,
        'order_id'                                      as column_name,
        transactions._source_file                       as source_file,
        transactions._source_line                       as source_line,
        {{ dbt.concat(["'order '", "transactions.order_id", "' is not in clean.orders'"]) }} as detail
    from {{ ref('transactions') }} as transactions
    where not exists (
        select 1 from {{ ref('orders') }} as orders where orders.order_id = transactions.order_id
    )
),

invalid_contacts as (
    select
        'customers'                                     as table_name,
        {{ record_key(['customer_id']) }}               as record_key,
        'invalid_email'                                 as issue,
        _month                                          as month,
        'email'                                         as column_name,
        _source_file                                    as source_file,
        _source_line                                    as source_line,
        {{ dbt.concat(["'email \"'", "email", "'\" is not well formed (local@domain.tld)'"]) }} as detail
    from {{ ref('customers') }}
    where not email_is_valid

    union all

    select
        'customers'                                     as table_name,
        {{ record_key(['customer_id']) }}               as record_key,
        'invalid_phone'                                 as issue,
        _month                                          as month,
        'phone'                                         as column_name,
        _source_file                                    as source_file,
        _source_line                                    as source_line,
        {{ dbt.concat(["'phone \"'", "phone", "'\" is not well formed (7 to 15 digits; spaces + - ( ) . allowed)'"]) }} as detail
    from {{ ref('customers') }}
    where not phone_is_valid
),

unknown_statuses as (
    select
        'orders'                                        as table_name,
        staged.record_key,
        'unknown_status'                                as issue,
        orders._month                                   as month,
        'status'                                        as column_name,
        orders._source_file                             as source_file,
        orders._source_line                             as source_line,
        case
            when staged.status_raw is null then 'status is missing; counted as placed'
            else {{ dbt.concat(["'status \"'", "staged.status_raw", "'\" is not one of " ~ order_statuses ~ "; counted as placed'"]) }}
        end                                             as detail
    from {{ ref('orders') }} as orders
    inner join {{ ref('stg_orders') }} as staged
        on  staged._source_file = orders._source_file
        and staged._source_line = orders._source_line
    where staged.status_is_unknown
),

price_outliers as (
    select
        'order_items'                                   as table_name,
        {{ record_key(['items.order_id', 'items.line_number']) }} as record_key,
        'price_outlier'                                 as issue,
        items._month                                    as month,
        'unit_price'                                    as column_name,
        items._source_file                              as source_file,
        items._source_line                              as source_line,
        {{ dbt.concat(["'unit_price '", dbt.cast("items.unit_price", dbt.type_string()),
                       "case when items.unit_price > 10 * products.list_price then ' is more than 10x' else ' is less than 1/10 of' end",
                       "' the list_price '", dbt.cast("products.list_price", dbt.type_string()),
                       "' of product '", "products.product_id"]) }} as detail
    from {{ ref('order_items') }} as items
    inner join {{ ref('products') }} as products
        on products.product_id = items.product_id
    where {{ is_price_outlier('items.unit_price', 'products.list_price') }}
)

select * from duplicates
union all select * from orphan_order_items
union all select * from orphan_customers
union all select * from orphan_products
union all select * from orphan_transactions
union all select * from invalid_contacts
union all select * from unknown_statuses
union all select * from non_canonical_values
union all select * from price_outliers
