-- The floor: the three headline marts straight from the CSVs, in one DuckDB process and one SQL
-- script, with the raw data contract's rules and the metric definitions of docs/metrics.md.
-- No staging layer, no quarantine or issues tables, no gates, no orchestration: the least work
-- that gives the same numbers, to tell the pipeline's fixed cost from the cost of the data.
--
-- benchmarks/harness.py replaces {raw} with the raw root (a quoted SQL literal's content) and runs
-- it with the DuckDB CLI on an empty database file, which ends up holding monthly_revenue,
-- monthly_top_products and customer_rfm; the harness compares them with the marts.
--
-- What it assumes of the files (true of `nexcart generate`'s output): comma-separated, the
-- contract's columns in the contract's order, UTF-8, plain .csv, no corrections/ folders, store
-- time zone UTC (a timestamp with an offset is moved to UTC). A line the CSV reader cannot split
-- into the header's fields is skipped (the pipeline quarantines it).

-- trimmed of the characters RE2's \s matches (the pipeline's clean_text), NULL when empty
create or replace temp macro clean_text(x) as nullif(regexp_replace(x, '^\s+|\s+$', '', 'g'), '');
-- the "no value" spellings of a typed column, on text already cleaned (each value is cleaned once:
-- a macro's argument is expanded wherever it appears). list_contains, not IN: DuckDB plans an IN
-- list as a join, which costs more than the whole parse.
create or replace temp macro no_value(t) as case when list_contains(['NULL', 'N/A', 'NA', 'NONE', '-'], upper(t)) then null else t end;
create or replace temp macro parse_dec(t) as
    case when regexp_full_match(t, '[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)') then try_cast(t as decimal(18,4)) end;
create or replace temp macro parse_int(t) as
    case when regexp_full_match(t, '[+-]?[0-9]+') then try_cast(t as integer) end;
create or replace temp macro parse_ts(t) as
    case
        when regexp_full_match(t, '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]{1,6})?)?')
            then try_cast(t as timestamp)
        when regexp_full_match(t, '([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]{1,6})?)?)(Z|([+-])(0[0-9]|1[0-4]):?([0-5][0-9])?)')
            then try_cast(regexp_extract(t, '^(.{16}(?::[0-9]{2}(?:[.][0-9]{1,6})?)?)', 1) as timestamp)
                 - to_minutes(cast(case when regexp_extract(t, '(Z|([+-])(0[0-9]|1[0-4]):?([0-5][0-9])?)$', 1) = 'Z' then 0
                           else (case when regexp_extract(t, '([+-])(0[0-9]|1[0-4]):?([0-5][0-9])?$', 1) = '-' then -1 else 1 end)
                                * (cast(regexp_extract(t, '([+-])(0[0-9]|1[0-4]):?([0-5][0-9])?$', 2) as integer) * 60
                                   + coalesce(try_cast(nullif(regexp_extract(t, '([+-])(0[0-9]|1[0-4]):?([0-5][0-9])?$', 3), '') as integer), 0))
                      end as bigint))
    end;
create or replace temp macro file_month(f) as regexp_extract(f, '([0-9]{4}-[0-9]{2})[.]csv$', 1);
-- DuckDB divides DECIMALs in DOUBLE: an amount / a count to the cent, half away from zero, in integers.
create or replace temp macro money_div(num, den) as
    case when den is null or den = 0 then null else
        cast(cast(sign(cast(num * 10000 as hugeint)) * sign(cast(den as hugeint))
                  * ((2 * abs(cast(num * 10000 as hugeint)) + 100 * abs(cast(den as hugeint)))
                     // (200 * abs(cast(den as hugeint)))) as decimal(38,0)) * cast(0.01 as decimal(3,2)) as decimal(18,2))
    end;

-- Orders: valid rows (required values present, order_ts parsed and in its file's month, shipping
-- amount a decimal when given), one per order_id: the latest file's, then its last line.
create temp table t_orders as  -- cleaned and parsed once, materialized (a filter on a derived
                                 -- column is pushed down and would compute it again)
select *, parse_ts(order_ts_text) as order_ts, parse_dec(shipping_text) as shipping_amount
from (
    select order_id, customer_id, no_value(order_ts) as order_ts_text, lower(status) as status,
           no_value(shipping_amount) as shipping_text, _month, _line
    from (
        select clean_text(order_id) as order_id, clean_text(customer_id) as customer_id,
               clean_text(order_ts) as order_ts, clean_text(status) as status,
               clean_text(shipping_amount) as shipping_amount, file_month(filename) as _month,
               row_number() over () as _line
        from read_csv('{raw}/orders/*.csv', header = true, auto_detect = false, delim = ',', quote = '"',
                      escape = '"', strict_mode = true, ignore_errors = true, filename = true,
                      columns = {'order_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'channel_id': 'VARCHAR',
                                 'order_ts': 'VARCHAR', 'status': 'VARCHAR', 'currency': 'VARCHAR',
                                 'ship_city': 'VARCHAR', 'ship_region': 'VARCHAR', 'ship_country': 'VARCHAR',
                                 'shipping_amount': 'VARCHAR'})
    )
);

create temp table f_orders as
select order_id, customer_id, order_ts, cast(order_ts as date) as order_date,
       cast(date_trunc('month', order_ts) as date) as order_month,
       case when list_contains(['placed', 'paid', 'shipped', 'delivered', 'completed', 'cancelled', 'returned'], status)
            then status else 'placed' end as status,
       _month
from t_orders
where order_id is not null and order_ts_text is not null and order_ts is not null
  and (shipping_text is not null and shipping_amount is null) is not true
  and (strftime(order_ts, '%Y-%m') <> _month) is not true
qualify row_number() over (partition by order_id order by _month desc, _line desc) = 1;

-- Products: the last valid line of products.csv per product_id.
create temp table f_products as
with raw as (
    select *, row_number() over () as _line
    from read_csv('{raw}/products.csv', header = true, auto_detect = false, delim = ',', quote = '"',
                  escape = '"', strict_mode = true, ignore_errors = true,
                  columns = {'product_id': 'VARCHAR', 'product_name': 'VARCHAR', 'category': 'VARCHAR',
                             'brand': 'VARCHAR', 'unit_cost': 'VARCHAR', 'list_price': 'VARCHAR'})
),
texts as (
    select clean_text(product_id) as product_id, clean_text(product_name) as product_name,
           clean_text(category) as category, no_value(clean_text(unit_cost)) as unit_cost_text,
           no_value(clean_text(list_price)) as list_price_text, _line
    from raw
),
typed as (
    select *, parse_dec(unit_cost_text) as unit_cost, parse_dec(list_price_text) as list_price from texts
)
select product_id, product_name, category, unit_cost, list_price
from typed
where product_id is not null
  and (unit_cost_text is not null and unit_cost is null) is not true
  and (list_price_text is not null and list_price is null) is not true
qualify row_number() over (partition by product_id order by _line desc) = 1;

-- Valid order lines (quantity > 0, unit_price > 0, 0 <= discount <= quantity x unit_price), one per
-- (order_id, line_number), with their order and product: metrics.md's counted lines.
create temp table t_lines as
select *, parse_int(line_number_text) as line_number, parse_int(quantity_text) as quantity,
       parse_dec(unit_price_text) as unit_price, parse_dec(discount_text) as discount
from (
    select order_id, no_value(line_number) as line_number_text, product_id, no_value(quantity) as quantity_text,
           no_value(unit_price) as unit_price_text, no_value(discount_amount) as discount_text, _month, _line
    from (
        select clean_text(order_id) as order_id, clean_text(line_number) as line_number,
               clean_text(product_id) as product_id, clean_text(quantity) as quantity,
               clean_text(unit_price) as unit_price, clean_text(discount_amount) as discount_amount,
               file_month(filename) as _month, row_number() over () as _line
        from read_csv('{raw}/order_items/*.csv', header = true, auto_detect = false, delim = ',', quote = '"',
                      escape = '"', strict_mode = true, ignore_errors = true, filename = true,
                      columns = {'order_id': 'VARCHAR', 'line_number': 'VARCHAR', 'product_id': 'VARCHAR',
                                 'quantity': 'VARCHAR', 'unit_price': 'VARCHAR', 'discount_amount': 'VARCHAR'})
    )
);

create temp table f_lines as
with typed as (select * from t_lines),
valid as (
    select order_id, line_number, product_id, quantity, unit_price,
           cast(coalesce(discount, 0) as decimal(18,4)) as discount_amount,
           cast(quantity * unit_price - coalesce(discount, 0) as decimal(18,4)) as line_revenue
    from typed
    where order_id is not null and line_number_text is not null and product_id is not null
      and quantity_text is not null and unit_price_text is not null
      and line_number is not null and quantity is not null and unit_price is not null
      and (discount_text is not null and discount is null) is not true
      and quantity > 0 and unit_price > 0
      and (coalesce(discount, 0) < 0 or coalesce(discount, 0) > quantity * unit_price) is not true
    qualify row_number() over (partition by order_id, line_number order by _month desc, _line desc) = 1
)
select l.*, o.customer_id, o.order_date, o.order_month as month, p.product_name,
       coalesce(nullif(p.category, ''), 'Unknown') as category,
       case when p.unit_cost is not null then cast(l.quantity * p.unit_cost as decimal(18,4)) end as line_cogs,
       coalesce(p.list_price > 0 and (l.unit_price > 10 * p.list_price or l.unit_price * 10 < p.list_price), false)
           as is_price_outlier
from valid l
join f_orders o on o.order_id = l.order_id and o.status <> 'cancelled'
left join f_products p on p.product_id = l.product_id;

-- Counted orders: not cancelled, with at least one valid line.
create temp table f_counted as
with orders as (
    select order_id, customer_id, order_date, month, count(*) as lines, sum(quantity) as units,
           sum(cast(line_revenue as decimal(38,4))) as gross_revenue,
           sum(cast(discount_amount as decimal(38,4))) as discounts,
           sum(cast(line_cogs as decimal(38,4))) as cogs,
           sum(cast(case when line_cogs is not null then line_revenue end as decimal(38,4))) as costed_revenue,
           sum(cast(case when is_price_outlier then line_revenue end as decimal(38,4))) as flagged_revenue
    from f_lines
    group by order_id, customer_id, order_date, month
)
select *, case when customer_id is not null then min(month) over (partition by customer_id) end as first_order_month
from orders;

-- Refunds: succeeded refunds and chargebacks by the month of transaction_ts (valid, deduplicated
-- transactions: kind and status among the contract's values, amount >= 0, in the file's month).
create temp table t_transactions as
select *, parse_ts(ts_text) as transaction_ts, parse_dec(amount_text) as amount
from (
    select transaction_id, order_id, no_value(transaction_ts) as ts_text, lower(kind) as kind,
           lower(status) as status, no_value(amount) as amount_text, _month, _line
    from (
        select clean_text(transaction_id) as transaction_id, clean_text(order_id) as order_id,
               clean_text(transaction_ts) as transaction_ts, clean_text(kind) as kind,
               clean_text(status) as status, clean_text(amount) as amount,
               file_month(filename) as _month, row_number() over () as _line
        from read_csv('{raw}/transactions/*.csv', header = true, auto_detect = false, delim = ',', quote = '"',
                      escape = '"', strict_mode = true, ignore_errors = true, filename = true,
                      columns = {'transaction_id': 'VARCHAR', 'order_id': 'VARCHAR', 'transaction_ts': 'VARCHAR',
                                 'kind': 'VARCHAR', 'payment_method': 'VARCHAR', 'status': 'VARCHAR',
                                 'amount': 'VARCHAR', 'currency': 'VARCHAR'})
    )
);

create temp table f_refunds as
with typed as (select * from t_transactions),
valid as (
    select * from typed
    where transaction_id is not null and order_id is not null and ts_text is not null and transaction_ts is not null
      and (amount_text is not null and amount is null) is not true
      and (amount < 0) is not true
      and (not list_contains(['payment', 'refund', 'chargeback'], kind)) is not true
      and (not list_contains(['succeeded', 'failed', 'pending'], status)) is not true
      and (strftime(transaction_ts, '%Y-%m') <> _month) is not true
    qualify row_number() over (partition by transaction_id order by _month desc, _line desc) = 1
)
select cast(date_trunc('month', transaction_ts) as date) as month, sum(cast(amount as decimal(38,4))) as refunds
from valid
where status = 'succeeded' and kind in ('refund', 'chargeback')
group by all;

-- The month spine: every month from the first to the last of the orders' months and of the months
-- with a delivered monthly file (an empty month has none: data_delivered false).
create temp table f_delivered as
select distinct cast(file_month(file) || '-01' as date) as month
from glob('{raw}/*/*.csv')
where regexp_matches(file, '(orders|order_items|transactions|inventory_snapshots)/[0-9]{4}-[0-9]{2}[.]csv$');

create temp table f_months as
with bounds as (
    select min(month) as first_month, max(month) as last_month from (
        select cast(_month || '-01' as date) as month from f_orders
        union all select order_month from f_orders
        union all select month from f_delivered
    )
)
select cast(unnest(generate_series(cast(first_month as timestamp), cast(last_month as timestamp), interval 1 month)) as date) as month
from bounds;

create or replace table monthly_revenue as
with sales as (
    select month, count(*) as orders, sum(units) as units, sum(gross_revenue) as gross_revenue,
           sum(discounts) as discounts, sum(cogs) as cogs, sum(costed_revenue) as costed_revenue,
           sum(flagged_revenue) as flagged_revenue,
           count(distinct case when first_order_month = month then customer_id end) as new_customers,
           count(distinct case when first_order_month < month then customer_id end) as returning_customers
    from f_counted group by month
),
monthly as (
    select m.month, coalesce(s.orders, 0) as orders, coalesce(s.units, 0) as units,
           coalesce(s.gross_revenue, 0) as gross_revenue, coalesce(s.discounts, 0) as discounts,
           coalesce(r.refunds, 0) as refunds, s.cogs, s.costed_revenue,
           coalesce(s.flagged_revenue, 0) as flagged_revenue, d.month is not null as data_delivered,
           coalesce(s.new_customers, 0) as new_customers, coalesce(s.returning_customers, 0) as returning_customers
    from f_months m
    left join sales s using (month)
    left join f_refunds r using (month)
    left join f_delivered d using (month)
)
select cur.month, cast(cur.orders as bigint) as orders, cast(cur.units as bigint) as units,
       cast(round(cur.gross_revenue, 2) as decimal(18,2)) as gross_revenue,
       cast(round(cur.discounts, 2) as decimal(18,2)) as discounts,
       cast(round(cur.refunds, 2) as decimal(18,2)) as refunds,
       cast(round(cur.gross_revenue - cur.refunds, 2) as decimal(18,2)) as net_revenue,
       money_div(cur.gross_revenue, cur.orders) as aov,
       cast(round(cur.cogs, 2) as decimal(18,2)) as cogs,
       cast(round(cur.costed_revenue - cur.cogs, 2) as decimal(18,2)) as gross_margin,
       cast(cur.new_customers as bigint) as new_customers,
       cast(cur.returning_customers as bigint) as returning_customers,
       cast(cur.gross_revenue - pm.gross_revenue as double) / nullif(cast(pm.gross_revenue as double), 0) as mom_growth,
       cast(cur.gross_revenue - py.gross_revenue as double) / nullif(cast(py.gross_revenue as double), 0) as yoy_growth,
       cast(round(cur.flagged_revenue, 2) as decimal(18,2)) as flagged_revenue,
       cast(cur.flagged_revenue as double) / nullif(cast(cur.gross_revenue as double), 0) as flagged_revenue_share,
       cur.data_delivered
from monthly cur
left join monthly pm on pm.month = cur.month - interval 1 month
left join monthly py on py.month = cur.month - interval 12 month
order by cur.month;

create or replace table monthly_top_products as
with by_product as (
    select month, product_id, max(product_name) as product_name, max(category) as category,
           sum(quantity) as units, cast(round(sum(cast(line_revenue as decimal(38,4))), 2) as decimal(18,2)) as gross_revenue
    from f_lines group by month, product_id
)
select month, cast(row_number() over (partition by month order by gross_revenue desc, product_id) as integer) as rank,
       product_id, product_name, category, cast(units as bigint) as units, gross_revenue
from by_product;

create or replace table customer_rfm as
with customer_months as (
    select customer_id, month, count(*) as orders, max(order_date) as last_order_date,
           sum(gross_revenue) as gross_revenue
    from f_counted where customer_id is not null group by customer_id, month
),
-- a customer's figures as of each month with an order, carried to the months up to the next one
running as (
    select customer_id, month, lead(month) over (partition by customer_id order by month) as next_month,
           sum(orders) over upto as frequency, max(last_order_date) over upto as last_order_date,
           sum(gross_revenue) over upto as gross_revenue
    from customer_months
    window upto as (partition by customer_id order by month rows between unbounded preceding and current row)
),
as_of_month as (
    select m.month, r.customer_id, date_diff('day', r.last_order_date, last_day(m.month)) as recency_days,
           r.frequency, cast(round(r.gross_revenue, 2) as decimal(18,2)) as monetary
    from running r
    join f_months m on m.month >= r.month and (r.next_month is null or m.month < r.next_month)
),
scored as (
    select *,
           ntile(5) over (partition by month order by recency_days desc, customer_id) as r_score,
           ntile(5) over (partition by month order by frequency, customer_id) as f_score,
           ntile(5) over (partition by month order by monetary, customer_id) as m_score
    from as_of_month
)
select month, customer_id, cast(recency_days as integer) as recency_days, cast(frequency as bigint) as frequency,
       monetary, cast(r_score as integer) as r_score, cast(f_score as integer) as f_score,
       cast(m_score as integer) as m_score,
       case
           when r_score = 5 and f_score >= 4 then 'Champions'
           when r_score >= 3 and f_score >= 4 then 'Loyal'
           when r_score >= 4 and f_score = 1 then 'New Customers'
           when r_score >= 4 then 'Potential Loyalists'
           when r_score = 3 and f_score = 3 then 'Potential Loyalists'
           when r_score = 3 then 'Hibernating'
           when f_score = 5 then 'Cannot Lose Them'
           when f_score >= 3 then 'At Risk'
           when r_score = 2 then 'Hibernating'
           else 'Lost'
       end as segment
from scored;
