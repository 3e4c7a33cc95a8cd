{#- The raw data contract (v1) as seen by dbt: per table its columns (contract order), key,
    whether it is a monthly drop, and its categorical columns (normalised in staging, flagged in
    quality.issues when they needed it). It mirrors orchestration/contract.py; the quality models
    loop over it so that the union over the 8 tables is written once. -#}
{% macro raw_contract() -%}
    {{ return({
        'orders': {
            'columns': ['order_id', 'customer_id', 'channel_id', 'order_ts', 'status', 'currency',
                        'ship_city', 'ship_region', 'ship_country', 'shipping_amount'],
            'key': ['order_id'],
            'monthly': true,
            'categorical': ['status'],
        },
        'order_items': {
            'columns': ['order_id', 'line_number', 'product_id', 'quantity', 'unit_price',
                        'discount_amount'],
            'key': ['order_id', 'line_number'],
            'monthly': true,
            'categorical': [],
        },
        'transactions': {
            'columns': ['transaction_id', 'order_id', 'transaction_ts', 'kind', 'payment_method',
                        'status', 'amount', 'currency'],
            'key': ['transaction_id'],
            'monthly': true,
            'categorical': ['kind', 'payment_method', 'status'],
        },
        'inventory_snapshots': {
            'columns': ['snapshot_date', 'product_id', 'warehouse_id', 'on_hand_qty',
                        'reserved_qty', 'reorder_point'],
            'key': ['snapshot_date', 'product_id', 'warehouse_id'],
            'monthly': true,
            'categorical': [],
        },
        'customers': {
            'columns': ['customer_id', 'email', 'phone', 'first_name', 'last_name', 'city',
                        'region', 'country', 'signup_date'],
            'key': ['customer_id'],
            'monthly': false,
            'categorical': [],
        },
        'products': {
            'columns': ['product_id', 'product_name', 'category', 'brand', 'unit_cost',
                        'list_price'],
            'key': ['product_id'],
            'monthly': false,
            'categorical': [],
        },
        'channels': {
            'columns': ['channel_id', 'channel_name', 'channel_type'],
            'key': ['channel_id'],
            'monthly': false,
            'categorical': ['channel_type'],
        },
        'warehouses': {
            'columns': ['warehouse_id', 'warehouse_name', 'region', 'country'],
            'key': ['warehouse_id'],
            'monthly': false,
            'categorical': [],
        },
    }) }}
{%- endmacro %}

{#- The accepted values of the contract's categorical columns. -#}
{% macro contract_values(name) -%}
    {{ return({
        'order_status': ['placed', 'paid', 'shipped', 'delivered', 'completed', 'cancelled', 'returned'],
        'transaction_kind': ['payment', 'refund', 'chargeback'],
        'transaction_status': ['succeeded', 'failed', 'pending'],
        'channel_type': ['web', 'mobile', 'marketplace', 'social', 'retail', 'other'],
    }[name]) }}
{%- endmacro %}

{#- SQL list literal of a value list: ('a', 'b'). -#}
{% macro sql_list(values) -%}
    ({% for v in values %}'{{ v | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}
