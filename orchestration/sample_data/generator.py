"""A synthetic retailer's exports: every table of the raw data contract, realistic and deterministic.

`generate` simulates a multi-channel web shop (customers, catalogue, orders, payments, refunds and
warehouse stock), writes it in the contract's layout, injects data-quality defects at a known rate
and records every defective line in `_ground_truth/defects.csv`, so the pipeline's quarantine and
issue tables can be checked against what was really broken.

Real exports are also untidy in ways that break no rule; those are real-world shape, not defects:
they come at every defect rate (a defect rate of 0 still has them), the pipeline must accept them
without flagging anything, and `_ground_truth/real_world.csv` lists them: a seasonal shop's empty
month (no monthly file at all) followed, in longer windows, by a month whose few orders were all
cancelled before any line was added, such orders in other months too, and orders paid in full
by a voucher or gift card (every line discounted to 0, a payment of 0.00). A status outside the
contract's list is a defect (`unknown_status`: the pipeline flags it), and so is a price outlier.

Everything is vectorised with numpy; the only Python loops run over small things (months, days of
the inventory simulation, categories, defect kinds), never over orders. Text columns are numpy
StringDType arrays, which keep string building in C. All randomness comes from one
Generator(PCG64(seed)), split into one independent stream per stage, so a change in one stage (or
in the defect rate) does not reshuffle the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from numpy.dtypes import StringDType

from orchestration.contract import MONTH_FILE_RE, MONTH_RE, TABLES
from orchestration.settings import load_settings

TEXT = StringDType()
DAY = 86_400
HOUR = 3_600
ORDER_ID_WIDTH, CUSTOMER_ID_WIDTH, PRODUCT_ID_WIDTH, TRANSACTION_ID_WIDTH = 7, 6, 4, 7
GROUND_TRUTH_FILE = "_ground_truth/defects.csv"
GROUND_TRUTH_COLUMNS = ("table_name", "month", "record_key", "kind", "source_file", "source_line")

# ----------------------------------------------------------------------------------------------
# The simulated business
# ----------------------------------------------------------------------------------------------

CHANNELS = (  # channel_id, channel_name, channel_type
    ("CH01", "Online Store", "web"),
    ("CH02", "Mobile App", "mobile"),
    ("CH03", "Amazon Marketplace", "marketplace"),
    ("CH04", "Instagram Shop", "social"),
    ("CH05", "Flagship Store", "retail"),
    ("CH06", "Phone Orders", "other"),
)
CHANNEL_TYPES = tuple(channel_type for _, _, channel_type in CHANNELS)
RETAIL = CHANNEL_TYPES.index("retail")
MOBILE = CHANNEL_TYPES.index("mobile")
MARKETPLACE = CHANNEL_TYPES.index("marketplace")
# Channel mix at the first and the last month (interpolated between): the app and social grow.
CHANNEL_SHARE_FIRST = (0.50, 0.20, 0.15, 0.04, 0.08, 0.03)
CHANNEL_SHARE_LAST = (0.41, 0.31, 0.15, 0.07, 0.04, 0.02)
# The app needs a login; walk-in store buyers are often anonymous.
GUEST_SHARE_BY_CHANNEL = (0.14, 0.03, 0.08, 0.22, 0.45, 0.05)

WAREHOUSES = (  # warehouse_id, warehouse_name, region, country
    ("W01", "Reno Fulfillment Center", "NV", "US"),
    ("W02", "Columbus Distribution Center", "OH", "US"),
    ("W03", "Toronto Hub", "ON", "CA"),
    ("W04", "Leipzig EU Hub", "Sachsen", "DE"),
)
STORE_WAREHOUSE = 1  # the flagship store is stocked from Columbus

COUNTRY_SHARE = {"US": 0.46, "GB": 0.14, "DE": 0.12, "CA": 0.10, "FR": 0.10, "AU": 0.08}
COUNTRIES = tuple(COUNTRY_SHARE)
GEOGRAPHY = (  # country, region, city, weight within its country, serving warehouse
    ("US", "CA", "Los Angeles", 10, 0), ("US", "CA", "San Francisco", 5, 0),
    ("US", "CA", "San Diego", 4, 0), ("US", "WA", "Seattle", 5, 0), ("US", "CO", "Denver", 4, 0),
    ("US", "TX", "Houston", 7, 1), ("US", "TX", "Austin", 4, 1), ("US", "TX", "Dallas", 6, 1),
    ("US", "NY", "New York", 14, 1), ("US", "NY", "Buffalo", 2, 1), ("US", "IL", "Chicago", 8, 1),
    ("US", "FL", "Miami", 5, 1), ("US", "FL", "Orlando", 3, 1), ("US", "MA", "Boston", 5, 1),
    ("US", "GA", "Atlanta", 5, 1),
    ("CA", "ON", "Toronto", 10, 2), ("CA", "ON", "Ottawa", 3, 2), ("CA", "QC", "Montréal", 7, 2),
    ("CA", "QC", "Québec City", 2, 2), ("CA", "BC", "Vancouver", 5, 2), ("CA", "AB", "Calgary", 3, 2),
    ("GB", "England", "London", 14, 3), ("GB", "England", "Manchester", 4, 3),
    ("GB", "England", "Birmingham", 4, 3), ("GB", "Scotland", "Edinburgh", 2, 3),
    ("GB", "Scotland", "Glasgow", 2, 3), ("GB", "Wales", "Cardiff", 1, 3),
    ("DE", "Berlin", "Berlin", 6, 3), ("DE", "Bayern", "München", 5, 3),
    ("DE", "Bayern", "Nürnberg", 2, 3), ("DE", "Hamburg", "Hamburg", 3, 3),
    ("DE", "Nordrhein-Westfalen", "Köln", 3, 3), ("DE", "Nordrhein-Westfalen", "Düsseldorf", 2, 3),
    ("DE", "Hessen", "Frankfurt am Main", 3, 3),
    ("FR", "Île-de-France", "Paris", 10, 3), ("FR", "Auvergne-Rhône-Alpes", "Lyon", 3, 3),
    ("FR", "Provence-Alpes-Côte d'Azur", "Marseille", 3, 3),
    ("FR", "Provence-Alpes-Côte d'Azur", "Nice", 1, 3), ("FR", "Nouvelle-Aquitaine", "Bordeaux", 2, 3),
    ("FR", "Occitanie", "Toulouse", 2, 3),
    ("AU", "NSW", "Sydney", 10, 0), ("AU", "VIC", "Melbourne", 9, 0), ("AU", "QLD", "Brisbane", 5, 0),
    ("AU", "WA", "Perth", 4, 0),
)
CITY_COUNTRY_CODE, CITY_REGION, CITY_NAME = zip(*(row[:3] for row in GEOGRAPHY))
CITY_COUNTRY = np.array([COUNTRIES.index(code) for code in CITY_COUNTRY_CODE])
CITY_WAREHOUSE = np.array([row[4] for row in GEOGRAPHY])

# Per country: flat shipping (cents), free-shipping threshold (cents), transit days min/max,
# phone format (prefix, digit groups, group separator) and e-mail providers.
SHIPPING_RATE = {"US": 599, "CA": 899, "GB": 499, "DE": 490, "FR": 490, "AU": 995}
FREE_SHIPPING_FROM = {"US": 5000, "CA": 7500, "GB": 4000, "DE": 4000, "FR": 4000, "AU": 8000}
TRANSIT_DAYS = {"US": (2, 5), "CA": (2, 6), "GB": (2, 5), "DE": (1, 3), "FR": (2, 4), "AU": (6, 12)}
PHONE_FORMAT = {
    "US": ("+1 ", (3, 3, 4), "-"), "CA": ("+1 ", (3, 3, 4), "-"), "GB": ("+44 7", (3, 6), " "),
    "DE": ("+49 1", (2, 8), " "), "FR": ("+33 6 ", (2, 2, 2, 2), " "), "AU": ("+61 4", (2, 3, 3), " "),
}
EMAIL_DOMAINS = {
    "US": ("gmail.com", "yahoo.com", "outlook.com", "icloud.com"),
    "CA": ("gmail.com", "outlook.com", "yahoo.ca"),
    "GB": ("gmail.com", "outlook.com", "btinternet.com"),
    "DE": ("gmail.com", "gmx.de", "web.de"),
    "FR": ("gmail.com", "orange.fr", "free.fr"),
    "AU": ("gmail.com", "bigpond.com", "outlook.com"),
}
FIRST_NAMES = (  # as written, as in an e-mail address
    ("James", "james"), ("Mary", "mary"), ("Olivia", "olivia"), ("Noah", "noah"), ("Liam", "liam"),
    ("Emma", "emma"), ("Sophie", "sophie"), ("Lukas", "lukas"), ("Léa", "lea"), ("Chloé", "chloe"),
    ("Zoë", "zoe"), ("Jürgen", "juergen"), ("Hannah", "hannah"), ("Mia", "mia"), ("Lucas", "lucas"),
    ("Amelia", "amelia"), ("Oliver", "oliver"), ("Jack", "jack"), ("Isla", "isla"), ("Aarav", "aarav"),
    ("Priya", "priya"), ("Wei", "wei"), ("Mei", "mei"), ("Mateo", "mateo"), ("Sofía", "sofia"),
    ("Ethan", "ethan"), ("Ava", "ava"), ("Fatima", "fatima"), ("Omar", "omar"), ("Inès", "ines"),
    ("Maximilian", "maximilian"), ("Charlotte", "charlotte"), ("Thomas", "thomas"), ("Grace", "grace"),
    ("Henry", "henry"), ("Renée", "renee"), ("François", "francois"), ("Siobhan", "siobhan"),
    ("Connor", "connor"), ("Yuki", "yuki"),
)
LAST_NAMES = (
    ("Smith", "smith"), ("Johnson", "johnson"), ("Williams", "williams"), ("Brown", "brown"),
    ("Jones", "jones"), ("Garcia", "garcia"), ("Miller", "miller"), ("Davis", "davis"),
    ("Martin", "martin"), ("Bernard", "bernard"), ("Dubois", "dubois"), ("Lefèvre", "lefevre"),
    ("Müller", "mueller"), ("Schmidt", "schmidt"), ("Schneider", "schneider"), ("Fischer", "fischer"),
    ("Weber", "weber"), ("Taylor", "taylor"), ("Wilson", "wilson"), ("Thompson", "thompson"),
    ("O'Brien", "obrien"), ("MacDonald", "macdonald"), ("Nguyen", "nguyen"), ("Tremblay", "tremblay"),
    ("Roy", "roy"), ("Gagnon", "gagnon"), ("Patel", "patel"), ("Singh", "singh"), ("Kim", "kim"),
    ("Lee", "lee"), ("Wang", "wang"), ("Rossi", "rossi"), ("Kowalski", "kowalski"),
    ("Andersen", "andersen"), ("Walker", "walker"), ("Young", "young"), ("Hughes", "hughes"),
    ("Evans", "evans"), ("Fournier", "fournier"), ("Zimmermann", "zimmermann"),
)


@dataclass(frozen=True)
class Category:
    name: str
    catalogue_share: float
    median_price: float  # dollars; list prices are log-normal around it
    price_spread: float
    cost_ratio: tuple[float, float]  # unit_cost / list_price
    brands: tuple[str, ...]
    items: tuple[str, ...]
    variants: tuple[str, ...]
    seasonality: tuple[float, ...] = (1.0,) * 12  # demand multiplier per calendar month


CATEGORIES = (
    Category(
        "Electronics", 0.16, 69, 0.75, (0.55, 0.78),
        ("Voltix", "Auralis", "Nexon", "Pixelcraft", "Lumio"),
        ("Wireless Earbuds", "Bluetooth Speaker", "USB-C Charger", "Smart Watch", "HD Webcam",
         "Power Bank", "Mechanical Keyboard", "Wireless Mouse", "Portable SSD",
         "Noise-Cancelling Headphones", 'Monitor 27"'),
        ("", " (Black)", " (White)", " Pro", " Mini", ", 2-Pack"),
        (1, 1, 1, 1, 1, 1, 1, 1, 1, 1.05, 1.5, 1.4),
    ),
    Category(
        "Home & Kitchen", 0.18, 29, 0.7, (0.35, 0.6),
        ("Casa Nova", "Hearthwell", "Nordik", "Ferro & Pine"),
        ("Ceramic Mug", 'Chef\'s Knife 8"', "Cast Iron Skillet", "Linen Throw", "Pour-Over Kettle",
         "Glass Food Storage", "Bamboo Cutting Board", "Scented Candle", "Bath Towel", "Table Lamp"),
        ("", ", Set of 2", ", Set of 4", " – Large", " – Small", " (Sage)"),
        (1, 1, 1, 1, 1, 1, 1, 1, 1, 1.05, 1.2, 1.3),
    ),
    Category(
        "Apparel", 0.18, 34, 0.55, (0.3, 0.5),
        ("Northline", "Urbane", "Kestrel", "Maison Lune", "Drift"),
        ("Cotton T-Shirt", "Hoodie", "Slim Jeans", "Rain Jacket", "Merino Socks", "Running Shorts",
         "Linen Shirt", "Puffer Vest"),
        (" – S", " – M", " – L", " – XL", ", 3-Pack", " (Navy)"),
        (0.9, 0.9, 1, 1.05, 1.05, 1, 0.95, 1.05, 1.2, 1.2, 1.1, 1.1),
    ),
    Category(
        "Beauty & Personal Care", 0.12, 19, 0.5, (0.25, 0.45),
        ("Lumière", "Aqua Vera", "Botanica", "Pure Ritual"),
        ("Face Serum", "Hand Cream", "Shampoo", "Lip Balm", "Sunscreen SPF 50", "Body Wash",
         "Eau de Parfum"),
        ("", " 50 ml", " 100 ml", " 250 ml", ", Travel Size"),
        (1, 1, 1, 1, 1.1, 1.2, 1.2, 1.1, 1, 1, 1.2, 1.4),
    ),
    Category(
        "Sports & Outdoors", 0.12, 45, 0.8, (0.4, 0.65),
        ("Summit", "Trailcraft", "Velo", "AquaPeak"),
        ("Yoga Mat", "Water Bottle", "Trail Backpack", "Camping Lantern", "Resistance Bands",
         "Cycling Gloves", "Tent 2-Person"),
        ("", " (Green)", " (Grey)", " – 1 L", " – 20 L"),
        (1.1, 1, 1.05, 1.15, 1.3, 1.35, 1.3, 1.1, 1, 0.9, 0.9, 0.95),
    ),
    Category(
        "Toys & Games", 0.10, 24, 0.6, (0.35, 0.6),
        ("Playwise", "Brickton", "Little Owl", "Funforge"),
        ("Building Set", "Board Game", "Puzzle 1000 pcs", "Plush Bear", "Card Game", "RC Car",
         "Wooden Train Set", "Art Kit"),
        ("", " – Deluxe", ", Family Edition", " (Ages 3+)"),
        (0.8, 0.8, 0.85, 0.9, 0.9, 0.9, 0.9, 0.9, 0.95, 1.2, 1.9, 2.6),
    ),
    Category(
        "Books", 0.08, 15, 0.4, (0.45, 0.7),
        ("Penrose Press", "Harbor Books", "Quill & Ink"),
        ("Cookbook", "Mystery Novel", "Travel Guide", "Children's Picture Book", "Business Handbook",
         "Poetry Collection", "Science Fiction Saga", "Gardening Manual"),
        ("", " (Hardcover)", " (Paperback)", ", Signed Edition"),
        (1.1, 1, 1, 1, 1, 1.1, 1.1, 1, 1, 1, 1.2, 1.4),
    ),
    Category(
        "Grocery & Gourmet", 0.08, 11, 0.45, (0.45, 0.7),
        ("Terra Fina", "Bean & Leaf", "Golden Hive", "Alpine Pantry"),
        ("Coffee Beans 1 kg", "Green Tea", "Raw Honey", "Olive Oil", "Dark Chocolate", "Granola",
         "Maple Syrup"),
        ("", ", 2-Pack", ", 6-Pack"),
        (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.15, 1.35),
    ),
)
APPAREL = [c.name for c in CATEGORIES].index("Apparel")

# Traffic: calendar-month seasonality (Q4 peak), weekday (Mon..Sun) and growth per month.
MONTH_SEASONALITY = (0.88, 0.84, 0.93, 0.95, 0.97, 0.95, 0.93, 0.96, 0.97, 1.08, 1.42, 1.58)
WEEKDAY_FACTOR = (1.02, 1.00, 0.99, 1.00, 0.96, 0.86, 1.10)
MONTHLY_GROWTH = 0.015
BLACK_FRIDAY_LIFT, CYBER_MONDAY_LIFT = 2.4, 2.0
HOLIDAY_LIFT = {(12, 24): 0.75, (12, 25): 0.5, (12, 26): 1.25, (1, 1): 0.65}  # (month, day)
# Orders per hour of day: online shoppers peak in the evening (later mornings at weekends);
# the flagship store only sells during opening hours.
HOURLY_PROFILE = np.array((
    (1.0, 0.6, 0.35, 0.25, 0.2, 0.3, 0.7, 1.4, 2.2, 2.9, 3.3, 3.6,
     4.1, 4.0, 3.6, 3.4, 3.5, 3.9, 4.5, 5.4, 6.0, 5.6, 4.2, 2.3),  # online, weekday
    (1.6, 1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.7, 1.3, 2.4, 3.4, 4.2,
     4.6, 4.6, 4.4, 4.3, 4.3, 4.5, 4.8, 5.3, 5.6, 5.2, 4.0, 2.6),  # online, weekend
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 1.5, 2.5, 3.2,
     4.5, 4.2, 3.4, 3.3, 3.8, 4.8, 5.0, 3.6, 2.0, 0, 0, 0),  # store, weekday (09-21)
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2.8, 4.0,
     4.8, 5.0, 5.0, 4.8, 4.5, 3.9, 0, 0, 0, 0, 0, 0),  # store, weekend (10-18)
))

LINES_PER_ORDER = (0.50, 0.25, 0.13, 0.07, 0.05)  # 1..5 lines
QUANTITY_SHARE = np.array((
    (0.74, 0.17, 0.05, 0.02, 0.01, 0.01),  # quantity 1..6, regular products
    (0.52, 0.24, 0.12, 0.06, 0.04, 0.02),  # cheap products (under 15.00) sell in multiples
))
CHEAP_BELOW = 1500
POPULARITY_EXPONENT = 1.0  # Zipf exponent of product popularity: top 20 % of products ~ 80 % of revenue
PROMO_SHARE, PEAK_PROMO_SHARE = 0.16, 0.5  # lines sold below list price; peak = Black Friday week
PROMO_FACTOR = (0.7, 0.95)
COUPON_SHARE = 0.06
COUPON_PERCENT = np.array((5, 10, 15, 20))
EXPRESS_SHARE = 0.08

# 'voucher' only pays the fully discounted orders (see VOUCHER_SHARE); no buyer picks it otherwise.
PAYMENT_METHODS = ("credit_card", "debit_card", "paypal", "apple_pay", "bank_transfer", "gift_card", "voucher")
BANK_TRANSFER = PAYMENT_METHODS.index("bank_transfer")
ZERO_VALUE_METHODS = np.array([PAYMENT_METHODS.index("gift_card"), PAYMENT_METHODS.index("voucher")])
PAYMENT_FAILURE_RATE = np.array((0.045, 0.06, 0.02, 0.012, 0.03, 0.09, 0.0))
CHARGEBACK_RATE = np.array((0.004, 0.0015, 0.001, 0.0008, 0.0, 0.0, 0.0))
PAYMENT_MIX = np.array((  # method shares per payment group (see _payment_group)
    (0.40, 0.16, 0.22, 0.13, 0.03, 0.06, 0.0),  # web, social, phone
    (0.22, 0.10, 0.38, 0.08, 0.17, 0.05, 0.0),  # web, social, phone in Germany
    (0.30, 0.12, 0.20, 0.30, 0.02, 0.06, 0.0),  # mobile app
    (0.62, 0.22, 0.00, 0.00, 0.00, 0.16, 0.0),  # marketplace
    (0.50, 0.32, 0.00, 0.15, 0.00, 0.03, 0.0),  # store till
))
CANCEL_SHARE = 0.035
RETURN_SHARE, APPAREL_RETURN_EXTRA = 0.05, 0.07
RETURN_WINDOW_DAYS = 30
PARTIAL_REFUND_SHARE = 0.4

# Real-world shape (not defects: present at every defect rate, and valid by the contract).
# A seasonal shop closes for one month strictly inside the window: no monthly file at all.
# Orders abandoned at checkout: cancelled before any line was added (no lines, no payment).
ABANDONED_SHARE = 0.0005
# In a window of 6 months or more the shop reopens softly: the month after the closure, its site
# is back online only for the last days, and the few checkouts started then were all abandoned,
# so that month has orders but no order lines.
SOFT_REOPENING_MIN_MONTHS = 6
SOFT_REOPENING_CHECKOUTS = 3
SOFT_REOPENING_DAYS = 2
# Orders paid in full by a voucher or gift card: every line discounted to 0, one payment of 0.00.
# About 1 in 10,000 payments, so a sample of a few thousand orders usually has none.
VOUCHER_SHARE = 0.0001

STATUSES = ("placed", "paid", "shipped", "delivered", "completed", "cancelled", "returned")
PLACED, PAID, SHIPPED, DELIVERED, COMPLETED, CANCELLED, RETURNED = range(len(STATUSES))
TRANSACTION_KINDS = ("payment", "refund", "chargeback")
TRANSACTION_STATUSES = ("succeeded", "failed", "pending")

INVENTORY_PRODUCTS = 60
LEAD_TIME_DAYS = (4, 10)
SAFETY_DAYS = 3
REORDER_COVER_DAYS = 28
RESERVED_SHARE = 0.2  # of the day's units still waiting to be picked at snapshot time

# ----------------------------------------------------------------------------------------------
# Which defects each table carries. Each kind gets an equal share of the table's defective rows,
# times its weight in DEFECT_WEIGHT (default 1).
# ----------------------------------------------------------------------------------------------

DEFECT_KINDS: dict[str, tuple[str, ...]] = {
    "orders": ("duplicate", "conflicting_duplicate", "unparsable_row", "unparsable_value",
               "missing_value", "orphan_customer", "non_canonical_value", "unknown_status"),
    "order_items": ("duplicate", "conflicting_duplicate", "unparsable_row", "unparsable_value",
                    "missing_value", "orphan_order_item", "non_positive_quantity",
                    "non_positive_price", "price_outlier"),
    "transactions": ("duplicate", "conflicting_duplicate", "unparsable_value", "orphan_transaction",
                     "non_canonical_value"),
    "customers": ("duplicate", "conflicting_duplicate", "invalid_email", "invalid_phone"),
    "products": ("duplicate", "conflicting_duplicate"),
    "channels": ("non_canonical_value",),
}
# Rarer kinds: a status outside the contract's list is a few orders of a shop-system migration; a
# price outlier is the price of a case (12 or 24 units) keyed as the unit price of a cheap
# product, which real exports show now and then, far too rarely to move a month's revenue.
DEFECT_WEIGHT = {"unknown_status": 0.25, "price_outlier": 0.1}
UNKNOWN_STATUSES = ("on_hold", "awaiting_payment", "backordered")
CASE_SIZES = (12, 24)
CHEAP_PRODUCT_QUANTILE = 0.05  # price outliers hit the cheapest twentieth of the catalogue...
OUTLIER_MAX_QUANTITY = 1  # ...on lines of one unit
ALL_DEFECT_KINDS = tuple(dict.fromkeys(kind for kinds in DEFECT_KINDS.values() for kind in kinds))
DEFECT_CODE = {kind: code for code, kind in enumerate(ALL_DEFECT_KINDS)}
# An order row with these defects is quarantined by the pipeline, so it is given no lines and no
# transactions: otherwise they would turn into orphans that the ground truth does not list.
QUARANTINED_ORDER_KINDS = ("unparsable_row", "unparsable_value", "missing_value")
# A broken row either lost its last field or has a decimal comma in this unquoted money column.
SPLIT_COLUMN = {"orders": "shipping_amount", "order_items": "unit_price"}
MISSING_VALUE_COLUMNS = {"orders": ("order_ts",), "order_items": ("product_id", "quantity", "unit_price")}
NON_CANONICAL_COLUMNS = {
    "orders": ("status",), "channels": ("channel_type",), "transactions": ("payment_method", "kind"),
}

# The real-world cases, listed in REAL_WORLD_FILE with the ground truth's columns ('kind' = case):
# the empty month and the month without lines (rows with only the month), the abandoned orders,
# the zero-value payments and their orders' fully discounted lines.
REAL_WORLD_FILE = "_ground_truth/real_world.csv"
REAL_WORLD_CASES = ("empty_month", "month_without_lines", "cancelled_without_lines", "zero_value_payment",
                    "fully_discounted_line")
CASE_CODE = {case: code for code, case in enumerate(REAL_WORLD_CASES)}


# ----------------------------------------------------------------------------------------------
# Small vectorised helpers
# ----------------------------------------------------------------------------------------------


def _text(values: Sequence[str] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=TEXT)


def _repeated(value: str, size: int) -> np.ndarray:
    return np.strings.add(np.empty(size, dtype=TEXT), value)  # an empty StringDType array is all ''


def _lookup(values: Sequence[str], index: np.ndarray) -> np.ndarray:
    """values[index] as text, with index -1 giving an empty field (NULL)."""
    return _text([*values, ""])[index]


def _format_id(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.strings.add(prefix, np.strings.zfill(numbers.astype(TEXT), width))


def _format_money(cents: np.ndarray) -> np.ndarray:
    """Integer cents as a decimal with 2 places ('-12.50'); cents avoid float rounding."""
    cents = np.asarray(cents, dtype=np.int64)
    magnitude = np.abs(cents)
    whole = (magnitude // 100).astype(TEXT)
    fraction = np.strings.zfill((magnitude % 100).astype(TEXT), 2)
    amount = np.strings.add(np.strings.add(whole, "."), fraction)
    return np.where(cents < 0, np.strings.add("-", amount), amount)


def _format_dates(epoch_days: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD' for days since 1970-01-01, through a table of the distinct days."""
    if epoch_days.size == 0:
        return _text([])
    first = int(epoch_days.min())
    days = np.arange(first, int(epoch_days.max()) + 1).astype("datetime64[D]")
    return np.datetime_as_string(days, unit="D").astype(TEXT)[epoch_days - first]


CLOCK = np.strings.add(
    np.strings.add(
        np.strings.add(np.strings.zfill((np.arange(DAY) // HOUR).astype(TEXT), 2), ":"),
        np.strings.add(np.strings.zfill((np.arange(DAY) // 60 % 60).astype(TEXT), 2), ":"),
    ),
    np.strings.zfill((np.arange(DAY) % 60).astype(TEXT), 2),
)


def _format_timestamps(epoch_seconds: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' (store-local, no offset) for seconds since the epoch."""
    dates = _format_dates(epoch_seconds // DAY)
    return np.strings.add(np.strings.add(dates, " "), CLOCK[epoch_seconds % DAY])


def _price_point(cents: np.ndarray) -> np.ndarray:
    """The highest price ending in .49 or .99 at or below cents (at least 0.49): 22.45 -> 21.99."""
    return np.maximum((np.asarray(cents, dtype=np.int64) + 1) // 50 * 50 - 1, 49)


def _draw_by_group(rng: np.random.Generator, group: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One category per row, drawn from the weight row of the row's group (inverse CDF)."""
    cumulative = np.cumsum(weights, axis=1, dtype=np.float64)
    cumulative /= cumulative[:, -1:]
    draws = rng.random(group.size)
    chosen = np.empty(group.size, dtype=np.int64)
    for g in np.unique(group):
        rows = group == g
        chosen[rows] = np.searchsorted(cumulative[g], draws[rows], side="right")
    return np.minimum(chosen, weights.shape[1] - 1)


def _uniform_seconds(rng: np.random.Generator, low: np.ndarray | float, high: np.ndarray | float,
                     size: int) -> np.ndarray:
    return rng.uniform(low, high, size).astype(np.int64)


def _run_bounds(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For keys in non-decreasing order: the first and the last index of each row's run."""
    n = sorted_keys.size
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if n else np.array([], int)
    lengths = np.diff(np.r_[starts, n])
    first = np.repeat(starts, lengths)
    return first, first + np.repeat(lengths, lengths) - 1


def _later_repeats(keys: np.ndarray) -> np.ndarray:
    """Mask of rows whose key already occurred in an earlier row."""
    order = np.argsort(keys, kind="stable")
    repeated = keys[order][1:] == keys[order][:-1]
    mask = np.zeros(keys.size, dtype=bool)
    mask[order[1:][repeated]] = True
    return mask


# ----------------------------------------------------------------------------------------------
# Calendar and traffic
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    month_labels: np.ndarray  # 'YYYY-MM' per simulated month
    month_of_year: np.ndarray  # per simulated month, 0 = January
    month_start_seconds: np.ndarray  # epoch seconds of each month's first day, plus the end
    epoch_days: np.ndarray  # every simulated day, as days since 1970-01-01
    day_month: np.ndarray  # per day: index of its simulated month
    day_of_month: np.ndarray  # per day: 1..31
    weekday: np.ndarray  # per day: 0 = Monday
    closed_month: int = -1  # index of the month the shop is closed (no orders, no files); -1 = none
    reopening_month: int = -1  # the month after it, when only a few abandoned checkouts came in; -1 = none

    @classmethod
    def build(cls, start_month: str, months: int, closed_month: int = -1, reopening_month: int = -1) -> Calendar:
        first = np.datetime64(start_month, "M")
        month_starts = np.arange(first, first + months + 1)
        days = np.arange(month_starts[0].astype("datetime64[D]"), month_starts[-1].astype("datetime64[D]"))
        epoch_days = days.astype(np.int64)
        return cls(
            month_labels=np.datetime_as_string(month_starts[:-1], unit="M").astype(TEXT),
            month_of_year=month_starts[:-1].astype(np.int64) % 12,
            month_start_seconds=month_starts.astype("datetime64[s]").astype(np.int64),
            epoch_days=epoch_days,
            day_month=(days.astype("datetime64[M]") - first).astype(np.int64),
            day_of_month=(days - days.astype("datetime64[M]")).astype(np.int64) + 1,
            weekday=(epoch_days + 3) % 7,  # 1970-01-01 was a Thursday
            closed_month=closed_month,
            reopening_month=reopening_month,
        )

    @property
    def day_month_of_year(self) -> np.ndarray:
        return self.month_of_year[self.day_month]

    @property
    def end_seconds(self) -> int:
        """The export moment: midnight after the last simulated day; nothing happens after it."""
        return int(self.month_start_seconds[-1])

    def month_of(self, epoch_seconds: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_start_seconds, epoch_seconds, side="right") - 1

    def postpone_past_closure(self, start_seconds: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Seconds after start of a step that the shop takes (payment, shipping, refund), moved
        past the closed month when it would fall in it: the backlog is worked off in the first
        day after it, in the order it came in (a month's steps spread over about a day). Later
        steps are computed from the postponed ones, so every order's events keep their order."""
        if self.closed_month < 0:
            return after
        closed, reopening = self.month_start_seconds[self.closed_month:self.closed_month + 2]
        at = start_seconds + after
        backlog = reopening + (at - closed) // 30 - start_seconds
        return np.where((at >= closed) & (at < reopening), backlog, after)

    def traffic_weights(self) -> np.ndarray:
        """Relative order volume per day: growth, Q4 season, weekday, Black Friday and holidays."""
        month_of_year, day_of_month = self.day_month_of_year, self.day_of_month
        weights = (
            (1 + MONTHLY_GROWTH) ** (np.arange(self.epoch_days.size) / 30.4)
            * np.asarray(MONTH_SEASONALITY)[month_of_year]
            * np.asarray(WEEKDAY_FACTOR)[self.weekday]
        )
        black_friday = np.flatnonzero(  # the fourth Friday of November
            (month_of_year == 10) & (self.weekday == 4) & (day_of_month >= 22) & (day_of_month <= 28))
        weights[black_friday] *= BLACK_FRIDAY_LIFT
        cyber_monday = black_friday + 3
        weights[cyber_monday[cyber_monday < weights.size]] *= CYBER_MONDAY_LIFT
        for (month, day), lift in HOLIDAY_LIFT.items():
            weights[(month_of_year == month - 1) & (day_of_month == day)] *= lift
        weights[(self.day_month == self.closed_month) | (self.day_month == self.reopening_month)] = 0.0
        return weights

    def promo_share(self) -> np.ndarray:
        """Share of lines sold below list price per day: Black Friday to Cyber Monday is a sale."""
        month_of_year, day_of_month = self.day_month_of_year, self.day_of_month
        sale = ((month_of_year == 10) & (day_of_month >= 22)) | ((month_of_year == 11) & (day_of_month <= 2))
        return np.where(sale, PEAK_PROMO_SHARE, PROMO_SHARE)


# ----------------------------------------------------------------------------------------------
# Reference data
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    category: np.ndarray
    name: np.ndarray
    brand: np.ndarray
    list_cents: np.ndarray
    cost_cents: np.ndarray  # -1 = unknown cost
    popularity: np.ndarray  # relative demand, Zipf over a random ranking


def _catalogue_size(orders: int) -> int:
    """About 500 products for 50k orders, growing mildly (fourth root) with the order volume."""
    return max(40, round(500 * (orders / 50_000) ** 0.25))


def _build_catalogue(rng: np.random.Generator, size: int) -> Catalogue:
    shares = np.array([c.catalogue_share for c in CATEGORIES])
    category = rng.choice(len(CATEGORIES), size=size, p=shares / shares.sum())
    name = np.empty(size, dtype=TEXT)
    brand = np.empty(size, dtype=TEXT)
    list_cents = np.empty(size, dtype=np.int64)
    cost_ratio = np.empty(size)
    for index, spec in enumerate(CATEGORIES):
        rows = np.flatnonzero(category == index)
        combos = len(spec.brands) * len(spec.items) * len(spec.variants)
        # distinct names as long as the category has enough combinations
        pick = rng.permutation(combos)[: rows.size] if rows.size <= combos else rng.integers(combos, size=rows.size)
        brand_index, rest = np.divmod(pick, len(spec.items) * len(spec.variants))
        item_index, variant_index = np.divmod(rest, len(spec.variants))
        brand[rows] = _text(spec.brands)[brand_index]
        name[rows] = np.strings.add(np.strings.add(np.strings.add(brand[rows], " "), _text(spec.items)[item_index]),
                                    _text(spec.variants)[variant_index])
        dollars = np.clip(spec.median_price * np.exp(spec.price_spread * rng.standard_normal(rows.size)), 3, 1500)
        list_cents[rows] = np.floor(dollars).astype(np.int64) * 100 + 99  # retail prices end in .99
        cost_ratio[rows] = rng.uniform(*spec.cost_ratio, rows.size)
    cost_cents = np.round(list_cents * cost_ratio).astype(np.int64)
    cost_cents[rng.choice(size, size=max(1, round(0.03 * size)), replace=False)] = -1
    popularity = (rng.permutation(size) + 1.0) ** -POPULARITY_EXPONENT
    return Catalogue(category, name, brand, list_cents, cost_cents, popularity)


@dataclass(frozen=True)
class Customers:
    signup_day: np.ndarray  # epoch day, ascending (customer ids follow signup order)
    city: np.ndarray
    activity: np.ndarray  # relative order frequency
    first_name: np.ndarray
    last_name: np.ndarray
    email: np.ndarray
    phone: np.ndarray


def _draw_cities(rng: np.random.Generator, size: int) -> np.ndarray:
    country_weight = np.array([COUNTRY_SHARE[code] for code in CITY_COUNTRY_CODE])
    city_weight = np.array([row[3] for row in GEOGRAPHY], dtype=float)
    country_total = np.bincount(CITY_COUNTRY, weights=city_weight)[CITY_COUNTRY]
    weight = country_weight * city_weight / country_total
    return rng.choice(len(GEOGRAPHY), size=size, p=weight / weight.sum())


def _phone_numbers(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    phone = np.empty(country.size, dtype=TEXT)
    for index, code in enumerate(COUNTRIES):
        rows = np.flatnonzero(country == index)
        prefix, groups, separator = PHONE_FORMAT[code]
        parts = [rng.integers(2 * 10 ** (width - 1), 10**width, rows.size).astype(TEXT) for width in groups]
        number = parts[0]
        for part in parts[1:]:
            number = np.strings.add(np.strings.add(number, separator), part)
        phone[rows] = np.strings.add(prefix, number)
    return phone


def _email_addresses(rng: np.random.Generator, first: np.ndarray, last: np.ndarray,
                     country: np.ndarray) -> np.ndarray:
    first_ascii = _text([ascii_name for _, ascii_name in FIRST_NAMES])[first]
    last_ascii = _text([ascii_name for _, ascii_name in LAST_NAMES])[last]
    number = rng.integers(1, 100, first.size).astype(TEXT)
    dotted = np.strings.add(np.strings.add(first_ascii, "."), last_ascii)
    joined = np.strings.add(np.strings.add(first_ascii, last_ascii), number)
    initial = np.strings.add(np.strings.add(np.strings.slice(first_ascii, 0, 1), last_ascii), number)
    local = np.select([rng.random(first.size) < 0.5, rng.random(first.size) < 0.6], [dotted, joined], initial)
    domain = np.empty(first.size, dtype=TEXT)
    for index, code in enumerate(COUNTRIES):
        rows = np.flatnonzero(country == index)
        domain[rows] = _text(EMAIL_DOMAINS[code])[rng.integers(len(EMAIL_DOMAINS[code]), size=rows.size)]
    return np.strings.add(np.strings.add(local, "@"), domain)


def _build_customers(rng: np.random.Generator, calendar: Calendar, size: int) -> Customers:
    # A third signed up in the two years before the sample; the rest sign up with the traffic.
    existing = rng.random(size) < 0.35
    existing[0] = True  # someone can place the very first order
    first_day = calendar.epoch_days[0]
    traffic = calendar.traffic_weights()
    signup_day = np.where(
        existing,
        first_day - rng.integers(1, 730, size),
        calendar.epoch_days[rng.choice(traffic.size, size=size, p=traffic / traffic.sum())],
    )
    signup_day.sort()
    city = _draw_cities(rng, size)
    first = rng.integers(len(FIRST_NAMES), size=size)
    last = rng.integers(len(LAST_NAMES), size=size)
    phone = _phone_numbers(rng, CITY_COUNTRY[city])
    phone[rng.random(size) < 0.15] = ""  # phone is optional at signup
    return Customers(
        signup_day=signup_day,
        city=city,
        activity=rng.lognormal(0.0, 1.1, size),
        first_name=_text([n for n, _ in FIRST_NAMES])[first],
        last_name=_text([n for n, _ in LAST_NAMES])[last],
        email=_email_addresses(rng, first, last, CITY_COUNTRY[city]),
        phone=phone,
    )


# ----------------------------------------------------------------------------------------------
# Orders, lines, fulfilment, payments
# ----------------------------------------------------------------------------------------------


@dataclass
class Orders:
    seconds: np.ndarray  # order_ts, epoch seconds, ascending (order ids follow it)
    day: np.ndarray  # index into calendar.epoch_days
    month: np.ndarray
    channel: np.ndarray
    customer: np.ndarray  # -1 = guest
    city: np.ndarray  # ship-to city, -1 = none (store sale)
    has_lines: np.ndarray
    abandoned: np.ndarray | None = None  # cancelled at checkout, before any line was added
    voucher: np.ndarray | None = None  # paid in full by a voucher: lines discounted to 0
    status: np.ndarray | None = None
    shipping_cents: np.ndarray | None = None


@dataclass(frozen=True)
class OrderLines:
    order: np.ndarray  # order index, lines grouped by order
    line_number: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_cents: np.ndarray
    discount_cents: np.ndarray

    @property
    def revenue_cents(self) -> np.ndarray:
        return self.quantity * self.unit_cents - self.discount_cents


def _place_orders(rng: np.random.Generator, calendar: Calendar, count: int) -> Orders:
    traffic = calendar.traffic_weights()
    reopening_days = np.flatnonzero(calendar.day_month == calendar.reopening_month)[-SOFT_REOPENING_DAYS:]
    checkouts = min(SOFT_REOPENING_CHECKOUTS, count - 1) if reopening_days.size else 0
    day = np.repeat(np.arange(traffic.size), rng.multinomial(count - checkouts, traffic / traffic.sum()))
    day = np.sort(np.concatenate([day, rng.choice(reopening_days, size=checkouts)])) if checkouts else day
    month = calendar.day_month[day]
    progress = np.arange(calendar.month_labels.size) / max(1, calendar.month_labels.size - 1)
    channel_share = np.outer(1 - progress, CHANNEL_SHARE_FIRST) + np.outer(progress, CHANNEL_SHARE_LAST)
    channel = _draw_by_group(rng, month, channel_share)
    channel[month == calendar.reopening_month] = 0  # only the online store was back
    weekend = calendar.weekday[day] >= 5
    hour = _draw_by_group(rng, 2 * (channel == RETAIL) + weekend, HOURLY_PROFILE)
    seconds = calendar.epoch_days[day] * DAY + hour * HOUR + rng.integers(0, HOUR, count)
    order = np.argsort(seconds, kind="stable")
    return Orders(seconds=seconds[order], day=day[order], month=month[order], channel=channel[order],
                  customer=np.full(count, -1), city=np.full(count, -1), has_lines=np.ones(count, dtype=bool),
                  abandoned=np.zeros(count, dtype=bool), voucher=np.zeros(count, dtype=bool))


def _abandon_checkouts(rng: np.random.Generator, orders: Orders, calendar: Calendar) -> None:
    """A few online orders are cancelled before a line was added: they get no lines (so no
    payment), status cancelled and no shipping. The flagship store's till cannot do that. Every
    checkout of the soft reopening month is one of them."""
    candidates = np.flatnonzero(orders.has_lines & (orders.channel != RETAIL))
    count = min(round(ABANDONED_SHARE * orders.seconds.size), candidates.size)
    abandoned = rng.choice(candidates, size=count, replace=False)
    orders.abandoned[abandoned] = True
    orders.abandoned[orders.month == calendar.reopening_month] = True
    orders.has_lines[orders.abandoned] = False


def _pay_by_voucher(rng: np.random.Generator, orders: Orders, lines: OrderLines, calendar: Calendar) -> OrderLines:
    """Pick the orders paid in full by a voucher and discount each of their lines to 0 (discount =
    quantity * unit_price, which the contract allows). Only orders placed before the last month:
    their payment is confirmed by the export, so each has one succeeded payment of 0.00."""
    before_last_month = orders.seconds < calendar.month_start_seconds[-2]
    candidates = np.flatnonzero(orders.has_lines & before_last_month)
    count = min(round(VOUCHER_SHARE * orders.seconds.size), candidates.size)
    orders.voucher[rng.choice(candidates, size=count, replace=False)] = True
    on_voucher = orders.voucher[lines.order]
    discount = np.where(on_voucher, lines.quantity * lines.unit_cents, lines.discount_cents)
    return replace(lines, discount_cents=discount)


def _assign_customers(rng: np.random.Generator, orders: Orders, customers: Customers,
                      calendar: Calendar) -> None:
    """Known buyers order on or after signup, active ones more often; a share signs up to buy."""
    count = orders.seconds.size
    order_day = calendar.epoch_days[orders.day]
    eligible = np.searchsorted(customers.signup_day, order_day, side="right")
    cumulative = np.cumsum(customers.activity)
    draw = rng.random(count) * cumulative[np.maximum(eligible, 1) - 1]
    customer = np.minimum(np.searchsorted(cumulative, draw, side="right"), np.maximum(eligible, 1) - 1)
    signed_up_today = np.searchsorted(customers.signup_day, order_day, side="left")
    newcomer = (rng.random(count) < 0.3) & (eligible > signed_up_today)
    customer[newcomer] = rng.integers(signed_up_today[newcomer], eligible[newcomer])
    guest = (rng.random(count) < np.asarray(GUEST_SHARE_BY_CHANNEL)[orders.channel]) | (eligible == 0)
    orders.customer = np.where(guest, -1, customer)
    # Ship to the buyer's own city, sometimes elsewhere (gifts); store sales ship nowhere.
    own_city = np.where(guest, -1, customers.city[customer])
    ship_elsewhere = (own_city < 0) | (rng.random(count) < 0.1)
    orders.city = np.where(orders.channel == RETAIL, -1, np.where(ship_elsewhere, _draw_cities(rng, count), own_city))


def _draw_lines(rng: np.random.Generator, orders: Orders, catalogue: Catalogue, calendar: Calendar) -> OrderLines:
    buying = np.flatnonzero(orders.has_lines)
    lines_per_order = rng.choice(len(LINES_PER_ORDER), size=buying.size, p=LINES_PER_ORDER) + 1
    order = np.repeat(buying, lines_per_order)
    month = orders.month[order]
    seasonality = np.array([c.seasonality for c in CATEGORIES])[:, calendar.month_of_year].T  # month x category
    demand = catalogue.popularity * seasonality[:, catalogue.category]  # month x product
    product = _draw_by_group(rng, month, demand)
    # A basket lists a product once: redraw repeats a few times, then drop the rare leftovers.
    basket_item = lambda: order * catalogue.popularity.size + product  # noqa: E731
    for _ in range(6):
        repeat = _later_repeats(basket_item())
        if not repeat.any():
            break
        product[repeat] = _draw_by_group(rng, month[repeat], demand)
    keep = ~_later_repeats(basket_item())
    order, month, product = order[keep], month[keep], product[keep]
    first, _ = _run_bounds(order)
    line_number = np.arange(order.size) - first + 1

    list_cents = catalogue.list_cents[product]
    quantity = _draw_by_group(rng, (list_cents < CHEAP_BELOW).astype(np.int64), QUANTITY_SHARE) + 1
    promo = rng.random(order.size) < calendar.promo_share()[orders.day[order]]
    factor = np.where(promo, rng.uniform(*PROMO_FACTOR, order.size), 1.0)
    unit_cents = np.where(promo, _price_point(np.round(list_cents * factor)), list_cents)
    coupon = rng.random(order.size) < COUPON_SHARE
    percent = COUPON_PERCENT[rng.integers(COUPON_PERCENT.size, size=order.size)]
    discount_cents = np.where(coupon, quantity * unit_cents * percent // 100, 0)
    return OrderLines(order, line_number, product, quantity, unit_cents, discount_cents)


@dataclass(frozen=True)
class Payments:
    """Per order: how it was paid and when things happened (seconds after order_ts)."""
    method: np.ndarray
    failed_first: np.ndarray  # a declined attempt before the successful one
    fail_after: np.ndarray
    paid_after: np.ndarray
    refund_after: np.ndarray  # -1 = no refund
    refund_cents: np.ndarray
    chargeback_after: np.ndarray  # -1 = no chargeback
    total_cents: np.ndarray


def _payment_group(orders: Orders) -> np.ndarray:
    germany = CITY_COUNTRY[np.maximum(orders.city, 0)] == COUNTRIES.index("DE")
    online_group = np.where(germany & (orders.city >= 0), 1, 0)
    return np.select([orders.channel == MOBILE, orders.channel == MARKETPLACE, orders.channel == RETAIL],
                     [2, 3, 4], online_group)


def _fulfil_orders(rng: np.random.Generator, orders: Orders, lines: OrderLines, catalogue: Catalogue,
                   calendar: Calendar) -> Payments:
    """Shipping, payment, lifecycle status at the export moment, returns and chargebacks."""
    count = orders.seconds.size
    country = np.where(orders.city >= 0, CITY_COUNTRY[np.maximum(orders.city, 0)], -1)
    store = orders.channel == RETAIL
    subtotal = np.bincount(lines.order, weights=lines.revenue_cents, minlength=count).round().astype(np.int64)
    flat_rate = np.array([SHIPPING_RATE[c] for c in COUNTRIES])[country]
    free_from = np.array([FREE_SHIPPING_FROM[c] for c in COUNTRIES])[country]
    express = rng.random(count) < EXPRESS_SHARE
    # Abandoned orders ship nothing; a voucher order ships free (its payment is 0.00 in all).
    orders.shipping_cents = np.select([store | orders.abandoned | orders.voucher, express, subtotal >= free_from],
                                      [0, 2 * flat_rate + 500, 0], flat_rate)
    total = subtotal + orders.shipping_cents

    method = _draw_by_group(rng, _payment_group(orders), PAYMENT_MIX)
    voucher_method = ZERO_VALUE_METHODS[rng.integers(ZERO_VALUE_METHODS.size, size=count)]
    method = np.where(orders.voucher, voucher_method, method)
    age = calendar.end_seconds - orders.seconds
    confirm = np.where(method == BANK_TRANSFER, _uniform_seconds(rng, 2 * HOUR, 3 * DAY, count),
                       _uniform_seconds(rng, 3, 90, count))
    failed_first = (rng.random(count) < PAYMENT_FAILURE_RATE[method]) & ~orders.voucher
    # Every step the shop takes is postponed past the closed month when it would fall in it.
    postpone = lambda after: calendar.postpone_past_closure(orders.seconds, after)  # noqa: E731
    fail_after = postpone(_uniform_seconds(rng, 2, 60, count))
    retry_gap = _uniform_seconds(rng, 60, 1200, count)
    paid_after = postpone(confirm + np.where(failed_first, fail_after + retry_gap, 0))

    transit_min, transit_max = (np.array([TRANSIT_DAYS[c][i] for c in COUNTRIES])[country] * DAY for i in (0, 1))
    shipped_after = postpone(paid_after + np.where(store, 0, _uniform_seconds(rng, 0.3 * DAY, 2.5 * DAY, count)))
    transit = _uniform_seconds(rng, transit_min, transit_max, count)
    delivered_after = postpone(shipped_after + np.where(store, 0, transit))
    completed_after = postpone(delivered_after + np.where(store, 0, RETURN_WINDOW_DAYS * DAY))
    status = np.select(
        [age > completed_after, age > delivered_after, age > shipped_after, age > paid_after],
        [COMPLETED, DELIVERED, SHIPPED, PAID], PLACED,
    )
    has_apparel = np.bincount(lines.order, weights=catalogue.category[lines.product] == APPAREL, minlength=count) > 0
    returns = ~store & ~orders.voucher & (rng.random(count) < RETURN_SHARE + APPAREL_RETURN_EXTRA * has_apparel)
    refund_after = postpone(delivered_after + _uniform_seconds(rng, 3 * DAY, 30 * DAY, count))  # inside the window
    cancelled = (~store & ~orders.voucher & (rng.random(count) < CANCEL_SHARE)) | orders.abandoned
    returned = returns & ~cancelled & (age > refund_after) & orders.has_lines
    status[returned] = RETURNED
    status[cancelled] = CANCELLED
    orders.status = status

    first_line_cents = np.zeros(count, dtype=np.int64)
    first_line_cents[lines.order[lines.line_number == 1]] = lines.revenue_cents[lines.line_number == 1]
    partial = (rng.random(count) < PARTIAL_REFUND_SHARE) & (np.bincount(lines.order, minlength=count) > 1)
    chargeback_after = postpone(paid_after + _uniform_seconds(rng, 20 * DAY, 75 * DAY, count))
    chargeback = ((rng.random(count) < CHARGEBACK_RATE[method]) & (status != CANCELLED) & (status != RETURNED)
                  & (age > chargeback_after) & orders.has_lines)
    return Payments(
        method=method,
        failed_first=failed_first,
        fail_after=fail_after,
        paid_after=paid_after,
        refund_after=np.where(returned, refund_after, -1),
        refund_cents=np.where(partial, first_line_cents, subtotal),
        chargeback_after=np.where(chargeback, chargeback_after, -1),
        total_cents=total,
    )


@dataclass(frozen=True)
class Transactions:
    order: np.ndarray
    seconds: np.ndarray  # ascending (transaction ids follow it)
    kind: np.ndarray
    method: np.ndarray
    status: np.ndarray
    cents: np.ndarray


def _record_transactions(orders: Orders, payments: Payments, calendar: Calendar) -> Transactions:
    """A payment per paid order (a declined attempt first for some), refunds, rare chargebacks."""
    age = calendar.end_seconds - orders.seconds
    payable = orders.has_lines & (orders.status != CANCELLED)
    awaiting = payable & (orders.status == PLACED)  # payment started, not confirmed at export time
    settled = payable & ~awaiting
    total = payments.total_cents
    succeeded, failed, pending = (TRANSACTION_STATUSES.index(s) for s in ("succeeded", "failed", "pending"))
    payment, refund, chargeback = range(len(TRANSACTION_KINDS))
    events = (  # which orders, seconds after order_ts, kind, status, amount
        (settled & payments.failed_first, payments.fail_after, payment, failed, total),
        (settled, payments.paid_after, payment, succeeded, total),
        (awaiting, np.minimum(5, age - 1), payment, pending, total),
        (payments.refund_after >= 0, payments.refund_after, refund, succeeded, payments.refund_cents),
        (payments.chargeback_after >= 0, payments.chargeback_after, chargeback, succeeded, total),
    )
    order = np.concatenate([np.flatnonzero(rows) for rows, *_ in events])
    seconds = orders.seconds[order] + np.concatenate([after[rows] for rows, after, *_ in events])
    kind = np.concatenate([np.full(rows.sum(), k) for rows, _, k, _, _ in events])
    status = np.concatenate([np.full(rows.sum(), s) for rows, _, _, s, _ in events])
    cents = np.concatenate([amount[rows] for rows, *_, amount in events])
    chronological = np.lexsort((kind, order, seconds))
    return Transactions(order[chronological], seconds[chronological], kind[chronological],
                        payments.method[order[chronological]], status[chronological], cents[chronological])


# ----------------------------------------------------------------------------------------------
# Warehouse stock
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """End-of-day stock per (day, stocked product, warehouse), flattened in that order."""
    day: np.ndarray
    product: np.ndarray
    warehouse: np.ndarray
    on_hand: np.ndarray
    reserved: np.ndarray
    reorder_point: np.ndarray


def _replenishment_plan(cumulative_demand: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray]:
    """Reorder point and order quantity per (product, warehouse) from the daily demand of the four
    weeks before `day` (the first month looks at its own first four weeks instead)."""
    days = cumulative_demand.shape[0] - 1
    start, end = (day - REORDER_COVER_DAYS, day) if day >= REORDER_COVER_DAYS else (0, min(days, REORDER_COVER_DAYS))
    daily_rate = (cumulative_demand[end] - cumulative_demand[start]) / (end - start)
    reorder_point = np.ceil(daily_rate * (sum(LEAD_TIME_DAYS) / 2 + SAFETY_DAYS)).astype(np.int64) + 2
    order_quantity = np.maximum(np.ceil(daily_rate * REORDER_COVER_DAYS).astype(np.int64), 10)
    return reorder_point, order_quantity


def _simulate_inventory(rng: np.random.Generator, orders: Orders, lines: OrderLines, catalogue: Catalogue,
                        calendar: Calendar) -> Inventory:
    """Sales draw the best sellers' stock down; a replenishment order goes out when stock falls below
    the reorder point (re-planned monthly from the last four weeks) and arrives after a lead time.
    Demand peaks outrun the plan now and then, which is when stockouts happen."""
    days, warehouses = calendar.epoch_days.size, len(WAREHOUSES)
    stocked = np.sort(np.argsort(-catalogue.popularity, kind="stable")[:INVENTORY_PRODUCTS])
    slot = np.full(catalogue.popularity.size, -1)
    slot[stocked] = np.arange(stocked.size)
    shape = (days, stocked.size, warehouses)

    order_warehouse = np.where(orders.city >= 0, CITY_WAREHOUSE[np.maximum(orders.city, 0)], STORE_WAREHOUSE)
    shipped = (slot[lines.product] >= 0) & (orders.status[lines.order] != CANCELLED)
    order, product = lines.order[shipped], lines.product[shipped]
    cell = np.ravel_multi_index((orders.day[order], slot[product], order_warehouse[order]), shape)
    demand = np.bincount(cell, weights=lines.quantity[shipped], minlength=np.prod(shape))
    demand = demand.reshape(shape).astype(np.int64)

    cumulative = np.concatenate([np.zeros((1, *shape[1:]), np.int64), np.cumsum(demand, axis=0)])
    lead_time = rng.integers(LEAD_TIME_DAYS[0], LEAD_TIME_DAYS[1] + 1, size=shape)
    on_hand_history = np.empty(shape, np.int64)
    reorder_history = np.empty(shape, np.int64)
    sold_history = np.empty(shape, np.int64)
    arrival_day = np.full(shape[1:], -1)
    incoming = np.zeros(shape[1:], np.int64)
    reorder_point, order_quantity = _replenishment_plan(cumulative, 0)
    on_hand = reorder_point + order_quantity  # the sample starts with full shelves
    month_first_days = np.r_[0, np.flatnonzero(np.diff(calendar.day_month) != 0) + 1]
    month_starts = set(month_first_days[1:].tolist())
    # The months after the closure (and the soft reopening) are planned from the four weeks before
    # it, not from their zero sales.
    plan_from = dict(zip(month_starts, month_starts))
    if calendar.closed_month > 0:
        last_quiet = max(calendar.closed_month, calendar.reopening_month)
        for month in range(calendar.closed_month + 1, min(last_quiet + 2, month_first_days.size)):
            plan_from[int(month_first_days[month])] = int(month_first_days[calendar.closed_month])
    for day in range(days):
        if day in month_starts:
            reorder_point, order_quantity = _replenishment_plan(cumulative, plan_from[day])
        arriving = arrival_day == day
        on_hand += np.where(arriving, incoming, 0)
        arrival_day[arriving] = -1
        sold = np.minimum(on_hand, demand[day])
        on_hand -= sold
        reorder = (on_hand < reorder_point) & (arrival_day < 0)
        arrival_day[reorder] = day + lead_time[day][reorder]
        incoming[reorder] = order_quantity[reorder]
        on_hand_history[day], reorder_history[day], sold_history[day] = on_hand, reorder_point, sold
    # Units sold today but not yet picked are still on the shelf, and reserved.
    reserved = rng.binomial(sold_history, RESERVED_SHARE)
    day_index, product_slot, warehouse = np.indices(shape).reshape(3, -1)
    open_days = calendar.day_month[day_index] != calendar.closed_month  # a closed shop sends no snapshots
    return Inventory(day_index[open_days], stocked[product_slot[open_days]], warehouse[open_days],
                     (on_hand_history + reserved).ravel()[open_days], reserved.ravel()[open_days],
                     reorder_history.ravel()[open_days])


# ----------------------------------------------------------------------------------------------
# Tables as text
# ----------------------------------------------------------------------------------------------


@dataclass
class TableDraft:
    """One contract table as text columns, a row per record in file order, and what the defects
    did to it: defective rows, rows written as a deliberately broken line, and extra lines (copies
    of rows) that go later into the same file."""
    name: str
    columns: dict[str, np.ndarray]  # contract column -> text, in contract order
    month: np.ndarray  # index of each row's monthly file (non-decreasing); -1 for a reference snapshot
    defect: np.ndarray  # per row: index into ALL_DEFECT_KINDS, -1 when clean
    case: np.ndarray  # per row: index into REAL_WORLD_CASES, -1 when none; such rows get no defect
    broken_rows: np.ndarray
    broken_lines: np.ndarray
    copy_source: np.ndarray  # per extra line: the row it copies
    copy_position: np.ndarray  # sorts among the row indices of its file: after the row it copies
    copy_line: np.ndarray
    copy_defect: np.ndarray

    @classmethod
    def of(cls, name: str, values: dict[str, np.ndarray], month: np.ndarray | None = None) -> TableDraft:
        columns = {column: _text(values[column]) for column in TABLES[name].columns}
        size = len(next(iter(columns.values())))
        return cls(
            name=name,
            columns=columns,
            month=np.full(size, -1) if month is None else np.asarray(month),
            defect=np.full(size, -1, dtype=np.int8),
            case=np.full(size, -1, dtype=np.int8),
            broken_rows=np.array([], dtype=np.int64),
            broken_lines=_text([]),
            copy_source=np.array([], dtype=np.int64),
            copy_position=np.array([], dtype=np.float64),
            copy_line=_text([]),
            copy_defect=np.array([], dtype=np.int8),
        )

    @property
    def size(self) -> int:
        """Rows (records) of the table; the file has line_count lines besides the header."""
        return self.month.size

    @property
    def line_count(self) -> int:
        return self.size + self.copy_source.size

    def lines(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The rows (all of them by default) as CSV lines."""
        values = self.columns.values()
        return _render_lines([column if rows is None else column[rows] for column in values])

    def mark(self, rows: np.ndarray, kind: str) -> None:
        self.defect[rows] = DEFECT_CODE[kind]

    def mark_case(self, rows: np.ndarray, case: str) -> None:
        self.case[rows] = CASE_CODE[case]

    def write_broken(self, rows: np.ndarray, lines: np.ndarray) -> None:
        self.broken_rows = np.concatenate([self.broken_rows, rows])
        self.broken_lines = np.concatenate([self.broken_lines, lines])

    def add_copies(self, rows: np.ndarray, position: np.ndarray, kind: str) -> None:
        """Extra lines showing the rows as they are now, at the given positions."""
        self.copy_source = np.concatenate([self.copy_source, rows])
        self.copy_position = np.concatenate([self.copy_position, position])
        self.copy_line = np.concatenate([self.copy_line, self.lines(rows)])
        self.copy_defect = np.concatenate([self.copy_defect, np.full(rows.size, DEFECT_CODE[kind], np.int8)])


def _reference_drafts(customers: Customers, catalogue: Catalogue) -> list[TableDraft]:
    channel_id, channel_name, channel_type = zip(*CHANNELS)
    warehouse_id, warehouse_name, warehouse_region, warehouse_country = zip(*WAREHOUSES)
    return [
        TableDraft.of("channels", {"channel_id": channel_id, "channel_name": channel_name,
                                   "channel_type": channel_type}),
        TableDraft.of("warehouses", {"warehouse_id": warehouse_id, "warehouse_name": warehouse_name,
                                     "region": warehouse_region, "country": warehouse_country}),
        TableDraft.of("products", {
            "product_id": _product_id(np.arange(catalogue.list_cents.size)),
            "product_name": catalogue.name,
            "category": _lookup([c.name for c in CATEGORIES], catalogue.category),
            "brand": catalogue.brand,
            "unit_cost": np.where(catalogue.cost_cents >= 0, _format_money(catalogue.cost_cents), ""),
            "list_price": _format_money(catalogue.list_cents),
        }),
        TableDraft.of("customers", {
            "customer_id": _customer_id(np.arange(customers.city.size)),
            "email": customers.email,
            "phone": customers.phone,
            "first_name": customers.first_name,
            "last_name": customers.last_name,
            "city": _lookup(CITY_NAME, customers.city),
            "region": _lookup(CITY_REGION, customers.city),
            "country": _lookup(CITY_COUNTRY_CODE, customers.city),
            "signup_date": _format_dates(customers.signup_day),
        }),
    ]


def _order_id(order_index: np.ndarray) -> np.ndarray:
    return _format_id("O", order_index + 1, ORDER_ID_WIDTH)


def _customer_id(customer_index: np.ndarray) -> np.ndarray:
    return _format_id("C", customer_index + 1, CUSTOMER_ID_WIDTH)


def _product_id(product_index: np.ndarray) -> np.ndarray:
    return _format_id("P", product_index + 1, PRODUCT_ID_WIDTH)


def _monthly_drafts(orders: Orders, lines: OrderLines, transactions: Transactions, inventory: Inventory,
                    calendar: Calendar, currency: str) -> list[TableDraft]:
    drafts = [
        TableDraft.of("orders", {
            "order_id": _order_id(np.arange(orders.seconds.size)),
            "customer_id": np.where(orders.customer >= 0, _customer_id(orders.customer), ""),
            "channel_id": _lookup([c[0] for c in CHANNELS], orders.channel),
            "order_ts": _format_timestamps(orders.seconds),
            "status": _lookup(STATUSES, orders.status),
            "currency": _repeated(currency, orders.seconds.size),
            "ship_city": _lookup(CITY_NAME, orders.city),
            "ship_region": _lookup(CITY_REGION, orders.city),
            "ship_country": _lookup(CITY_COUNTRY_CODE, orders.city),
            "shipping_amount": _format_money(orders.shipping_cents),
        }, orders.month),
        TableDraft.of("order_items", {
            "order_id": _order_id(lines.order),
            "line_number": lines.line_number.astype(TEXT),
            "product_id": _product_id(lines.product),
            "quantity": lines.quantity.astype(TEXT),
            "unit_price": _format_money(lines.unit_cents),
            "discount_amount": _format_money(lines.discount_cents),
        }, orders.month[lines.order]),
        TableDraft.of("transactions", {
            "transaction_id": _format_id("T", np.arange(1, transactions.order.size + 1), TRANSACTION_ID_WIDTH),
            "order_id": _order_id(transactions.order),
            "transaction_ts": _format_timestamps(transactions.seconds),
            "kind": _lookup(TRANSACTION_KINDS, transactions.kind),
            "payment_method": _lookup(PAYMENT_METHODS, transactions.method),
            "status": _lookup(TRANSACTION_STATUSES, transactions.status),
            "amount": _format_money(transactions.cents),
            "currency": _repeated(currency, transactions.order.size),
        }, calendar.month_of(transactions.seconds)),
        TableDraft.of("inventory_snapshots", {
            "snapshot_date": _format_dates(calendar.epoch_days[inventory.day]),
            "product_id": _product_id(inventory.product),
            "warehouse_id": _lookup([w[0] for w in WAREHOUSES], inventory.warehouse),
            "on_hand_qty": inventory.on_hand.astype(TEXT),
            "reserved_qty": inventory.reserved.astype(TEXT),
            "reorder_point": inventory.reorder_point.astype(TEXT),
        }, calendar.day_month[inventory.day]),
    ]
    by_name = {draft.name: draft for draft in drafts}
    by_name["orders"].mark_case(np.flatnonzero(orders.abandoned), "cancelled_without_lines")
    by_name["order_items"].mark_case(np.flatnonzero(orders.voucher[lines.order]), "fully_discounted_line")
    zero_payment = orders.voucher[transactions.order] & (transactions.kind == TRANSACTION_KINDS.index("payment"))
    by_name["transactions"].mark_case(np.flatnonzero(zero_payment), "zero_value_payment")
    for draft in drafts:
        if (draft.month == calendar.closed_month).any():
            raise RuntimeError(f"{draft.name} has rows in the closed month, which has no file")
    return drafts


# ----------------------------------------------------------------------------------------------
# Defects
# ----------------------------------------------------------------------------------------------


@dataclass
class DefectContext:
    rng: np.random.Generator
    list_cents: np.ndarray  # list price per product index
    lines: OrderLines  # the order lines as drawn, a row of the order_items draft each
    next_unknown_order: int  # order numbers from here on are in no orders file
    next_unknown_customer: int  # customer numbers from here on are not in customers.csv

    def unknown_order_ids(self, count: int) -> np.ndarray:
        self.next_unknown_order += count
        return _order_id(np.arange(self.next_unknown_order - count, self.next_unknown_order) - 1)

    def unknown_customer_ids(self, count: int) -> np.ndarray:
        self.next_unknown_customer += count
        return _customer_id(np.arange(self.next_unknown_customer - count, self.next_unknown_customer) - 1)


def _defect_count(rate: float, rows: int, kinds: int, weight: float = 1.0) -> int:
    """Rows of a defect kind: the table's share `rate`, split evenly over its kinds, times the
    kind's weight; at least one when rate > 0."""
    return 0 if rate <= 0 else max(1, round(rate * weight * rows / kinds))


def _one_of(rng: np.random.Generator, variants: Sequence[np.ndarray | str], size: int) -> np.ndarray:
    """Per row, one of several candidate values (arrays of `size` or constants), picked at random."""
    choice = rng.integers(len(variants), size=size)
    result = np.empty(size, dtype=TEXT)
    for index, variant in enumerate(variants):
        rows = choice == index
        result[rows] = variant[rows] if isinstance(variant, np.ndarray) else variant
    return result


def _garble_timestamp(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Month 13, day 45 or hour 99 ('2024-13-05 10:11:12', '2024-03-45 ...', '2024-03-05 99:11')."""
    cut = lambda start, stop=None: np.strings.slice(values, start, stop)  # noqa: E731
    return _one_of(rng, [
        np.strings.add(np.strings.add(cut(0, 5), "13"), cut(7)),
        np.strings.add(np.strings.add(cut(0, 8), "45"), cut(10)),
        np.strings.add(np.strings.add(cut(0, 11), "99"), cut(13, 16)),
    ], values.size)


def _garble_decimal(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """'12,50x', '12.50.00' or 'abc'."""
    return _one_of(rng, [np.strings.add(np.strings.replace(values, ".", ","), "x"),
                         np.strings.add(values, ".00"), "abc"], values.size)


def _garble_integer(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """'abc', 'two' or '2x'."""
    return _one_of(rng, ["abc", "two", np.strings.add(values, "x")], values.size)


def _blank(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    return np.empty(values.size, dtype=TEXT)


def _non_canonical(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Same category, other spelling: 'PAID', 'Credit Card', ' Shipped', 'web '."""
    spaced = np.strings.title(np.strings.replace(values, "_", " "))
    return _one_of(rng, [np.strings.upper(values), spaced, np.strings.add(" ", spaced),
                         np.strings.add(values, " ")], values.size)


UNPARSABLE_VALUE_REWRITES = {
    "orders": {"order_ts": _garble_timestamp, "shipping_amount": _garble_decimal},
    "order_items": {"quantity": _garble_integer, "unit_price": _garble_decimal},
    "transactions": {"transaction_ts": _garble_timestamp, "amount": _garble_decimal},
}


def _rewrite_one_column(ctx: DefectContext, draft: TableDraft, rows: np.ndarray,
                        rewrites: dict[str, Callable[[np.random.Generator, np.ndarray], np.ndarray]]) -> None:
    """Rewrite one value of each row, in a column picked at random among `rewrites`."""
    names = tuple(rewrites)
    pick = ctx.rng.integers(len(names), size=rows.size)
    for index, name in enumerate(names):
        chosen = rows[pick == index]
        draft.columns[name][chosen] = rewrites[name](ctx.rng, draft.columns[name][chosen])


def _unparsable_value(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    _rewrite_one_column(ctx, draft, rows, UNPARSABLE_VALUE_REWRITES[draft.name])


def _missing_value(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    _rewrite_one_column(ctx, draft, rows, dict.fromkeys(MISSING_VALUE_COLUMNS[draft.name], _blank))


def _non_canonical_value(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    _rewrite_one_column(ctx, draft, rows, dict.fromkeys(NON_CANONICAL_COLUMNS[draft.name], _non_canonical))


def _unparsable_row(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    """A line that lost its last field, or whose money value has an unquoted decimal comma."""
    columns = TABLES[draft.name].columns
    fields = {column: _csv_field(draft.columns[column][rows]) for column in columns}
    truncated = _join(fields[column] for column in columns[:-1])
    split_column = SPLIT_COLUMN[draft.name]
    fields[split_column] = np.strings.replace(draft.columns[split_column][rows], ".", ",")
    split = _join(fields[column] for column in columns)
    draft.write_broken(rows, _one_of(ctx.rng, [truncated, split], rows.size))


def _earlier_order_status(values: np.ndarray) -> np.ndarray:
    return _text(np.where(values == "placed", "paid", "placed"))


def _earlier_payment_status(values: np.ndarray) -> np.ndarray:
    return _text(np.where(values == "pending", "failed", "pending"))


def _earlier_quantity(values: np.ndarray) -> np.ndarray:
    return (values.astype(np.int64) + 1).astype(TEXT)


def _earlier_email(values: np.ndarray) -> np.ndarray:
    local, at, domain = np.strings.partition(values, _text("@"))
    return np.strings.add(np.strings.add(local, at), _text(np.where(domain == "gmail.com", "outlook.com", "gmail.com")))


def _earlier_price(values: np.ndarray) -> np.ndarray:
    return _format_money(np.round(values.astype(np.float64) * 100).astype(np.int64) + 100)


# The stale version of a record that an export also carries: the column that differs, and how.
STALE_VALUE = {
    "orders": ("status", _earlier_order_status),
    "order_items": ("quantity", _earlier_quantity),
    "transactions": ("status", _earlier_payment_status),
    "customers": ("email", _earlier_email),
    "products": ("list_price", _earlier_price),
}


def _orphan_order_reference(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    draft.columns["order_id"][rows] = ctx.unknown_order_ids(rows.size)


def _orphan_customer(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    draft.columns["customer_id"][rows] = ctx.unknown_customer_ids(rows.size)


def _non_positive_quantity(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    draft.columns["quantity"][rows] = _one_of(ctx.rng, ["0", "-1", "-2"], rows.size)


def _non_positive_price(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    price = draft.columns["unit_price"][rows]
    draft.columns["unit_price"][rows] = _one_of(ctx.rng, ["0.00", np.strings.add("-", price)], rows.size)


def _price_outlier(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    """unit_price = the price of a case of 12 or 24 units (a pack price keyed as the unit price)."""
    case_size = np.asarray(CASE_SIZES)[ctx.rng.integers(len(CASE_SIZES), size=rows.size)]
    draft.columns["unit_price"][rows] = _format_money(ctx.list_cents[ctx.lines.product[rows]] * case_size)


def _price_outlier_candidates(ctx: DefectContext, draft: TableDraft) -> np.ndarray:
    """Single-unit lines of the cheapest products, at list price: a case price keyed on
    them stays a small amount, and the line still shows 12-24x its list price. Chosen from the
    drawn numbers (parsing a million text values would cost seconds), then kept only where no
    earlier defect rewrote the product, quantity or price text."""
    lines = ctx.lines
    cheap = ctx.list_cents <= np.quantile(ctx.list_cents, CHEAP_PRODUCT_QUANTILE)
    rows = np.flatnonzero(cheap[lines.product] & (lines.quantity <= OUTLIER_MAX_QUANTITY)
                          & (lines.unit_cents == ctx.list_cents[lines.product]))
    unchanged = ((draft.columns["product_id"][rows] == _product_id(lines.product[rows]))
                 & (draft.columns["quantity"][rows] == lines.quantity[rows].astype(TEXT))
                 & (draft.columns["unit_price"][rows] == _format_money(lines.unit_cents[rows])))
    candidates = np.zeros(draft.size, dtype=bool)
    candidates[rows[unchanged]] = True
    return candidates


def _orphan_line_candidates(ctx: DefectContext, draft: TableDraft) -> np.ndarray:
    """Lines after an order's first: every order keeps a line with its id, so the only orders
    without lines are the real-world case of orders cancelled before a line was added."""
    return draft.columns["line_number"] != "1"


def _unknown_status(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    """A status the contract does not list (the pipeline flags it and counts it as placed)."""
    draft.columns["status"][rows] = _text(UNKNOWN_STATUSES)[ctx.rng.integers(len(UNKNOWN_STATUSES), size=rows.size)]


def _unknown_status_candidates(ctx: DefectContext, draft: TableDraft) -> np.ndarray:
    """Orders still in progress (placed or paid): those are the ones a shop system puts on hold."""
    return np.isin(draft.columns["status"], _text(["placed", "paid"]))


def _invalid_email(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    """No '@', nothing after it, two of them, or a space; none matches local@domain.tld."""
    local, at, domain = np.strings.partition(draft.columns["email"][rows], _text("@"))
    draft.columns["email"][rows] = _one_of(ctx.rng, [
        np.strings.add(np.strings.add(local, "."), domain),
        np.strings.add(local, "@"),
        np.strings.add(np.strings.add(local, "@@"), domain),
        np.strings.add(np.strings.add(local, " @"), domain),
    ], rows.size)


def _invalid_phone(ctx: DefectContext, draft: TableDraft, rows: np.ndarray) -> None:
    """Free text or letters instead of digits."""
    phone = draft.columns["phone"][rows]
    draft.columns["phone"][rows] = _one_of(ctx.rng, [
        "call after 6pm", "ask for reception", np.strings.add(np.strings.slice(phone, 0, -4), "XXXX"),
    ], rows.size)


COPY_KINDS = ("duplicate", "conflicting_duplicate")
# The other kinds change rows in place.
IN_PLACE_DEFECTS: dict[str, Callable[[DefectContext, TableDraft, np.ndarray], None]] = {
    "unparsable_row": _unparsable_row,
    "unparsable_value": _unparsable_value,
    "missing_value": _missing_value,
    "invalid_email": _invalid_email,
    "invalid_phone": _invalid_phone,
    "orphan_order_item": _orphan_order_reference,
    "orphan_customer": _orphan_customer,
    "orphan_transaction": _orphan_order_reference,
    "non_positive_quantity": _non_positive_quantity,
    "non_positive_price": _non_positive_price,
    "price_outlier": _price_outlier,
    "non_canonical_value": _non_canonical_value,
    "unknown_status": _unknown_status,
}
# Kinds that only fit some rows: which rows may carry them (the others may carry any row).
DEFECT_CANDIDATES: dict[str, Callable[[DefectContext, TableDraft], np.ndarray]] = {
    "price_outlier": _price_outlier_candidates,
    "unknown_status": _unknown_status_candidates,
    "orphan_order_item": _orphan_line_candidates,
}


def _add_later_copies(ctx: DefectContext, draft: TableDraft, rows: np.ndarray, kind: str) -> None:
    """Copies of rows, each at a random point after its original in the same file. For a conflicting
    duplicate the original then gets a stale value: the two lines differ, and the later one is the
    current record, which wins by last-line-wins, so the clean layer keeps the true data."""
    _, last = _run_bounds(draft.month)
    position = rows + (last[rows] + 1 - rows) * (1.0 - ctx.rng.random(rows.size))  # in (row, end]
    draft.add_copies(rows, position, kind)
    if kind == "conflicting_duplicate":
        column, stale = STALE_VALUE[draft.name]
        draft.columns[column][rows] = stale(draft.columns[column][rows])


def _reserve_quarantined_orders(rng: np.random.Generator, orders: Orders, calendar: Calendar,
                                rate: float) -> dict[str, np.ndarray]:
    """Pick the orders that will carry a quarantining defect, before their lines are drawn; none
    in the soft reopening month, whose orders are all abandoned checkouts."""
    order_count = orders.seconds.size
    candidates = np.flatnonzero(orders.month != calendar.reopening_month)
    count = _defect_count(rate, order_count, len(DEFECT_KINDS["orders"]))
    count = min(count, candidates.size // (len(QUARANTINED_ORDER_KINDS) + 1))
    picked = rng.choice(candidates, size=count * len(QUARANTINED_ORDER_KINDS), replace=False)
    return {kind: np.sort(picked[i * count:(i + 1) * count]) for i, kind in enumerate(QUARANTINED_ORDER_KINDS)}


def _inject_defects(ctx: DefectContext, draft: TableDraft, rate: float, reserved: dict[str, np.ndarray]) -> None:
    """Apply every defect kind of the table to its own distinct rows and mark the defective lines."""
    kinds = DEFECT_KINDS.get(draft.name, ())
    available = draft.case < 0  # a real-world case stays as it is, so its ground truth holds
    for rows in reserved.values():
        available[rows] = False
    for kind in kinds:
        rows = reserved.get(kind)
        if rows is None:
            fits = DEFECT_CANDIDATES[kind](ctx, draft) if kind in DEFECT_CANDIDATES else True
            candidates = np.flatnonzero(available & fits)
            count = min(_defect_count(rate, draft.size, len(kinds), DEFECT_WEIGHT.get(kind, 1.0)), candidates.size)
            rows = np.sort(ctx.rng.choice(candidates, size=count, replace=False))
            available[rows] = False
        if kind in COPY_KINDS:
            _add_later_copies(ctx, draft, rows, kind)
        else:
            IN_PLACE_DEFECTS[kind](ctx, draft, rows)
            draft.mark(rows, kind)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _csv_field(values: np.ndarray) -> np.ndarray:
    """RFC 4180: a value with a comma or a quote is quoted, its quotes doubled."""
    special = (np.strings.find(values, ",") >= 0) | (np.strings.find(values, '"') >= 0)
    quoted = values.copy()
    quoted[special] = np.strings.add(np.strings.add('"', np.strings.replace(values[special], '"', '""')), '"')
    return quoted


def _join(parts: Iterable[np.ndarray], separator: str = ",") -> np.ndarray:
    parts = iter(parts)
    joined = next(parts)
    for part in parts:
        joined = np.strings.add(np.strings.add(joined, separator), part)
    return joined


def _lines_needing_quotes(lines: np.ndarray, field_count: int) -> np.ndarray:
    """Indices of the bare-joined lines that hold a comma or a quote inside a value.

    Scanning the UTF-8 bytes of all lines at once is far faster than searching every string: a
    line needs quoting when it has a quote, or more commas than field separators. A line break in
    a value is refused: the ground truth relies on line number = record number + 1."""
    data = np.frombuffer("\n".join(lines.tolist()).encode("utf-8") + b"\n", dtype=np.uint8)
    line_ends = np.flatnonzero(data == ord("\n"))
    if line_ends.size != lines.size or (data == ord("\r")).any():
        raise ValueError("a generated value contains a line break")
    commas_before_end = np.searchsorted(np.flatnonzero(data == ord(",")), line_ends)
    needs_quotes = np.diff(commas_before_end, prepend=0) != field_count - 1
    needs_quotes[np.searchsorted(line_ends, np.flatnonzero(data == ord('"')))] = True
    return np.flatnonzero(needs_quotes)


def _render_lines(columns: Sequence[np.ndarray]) -> np.ndarray:
    """CSV lines of the rows: the bare values joined, then RFC 4180 quoting for the few lines that
    need it (quoting field by field everywhere would cost several times more)."""
    lines = _join(columns)
    if lines.size:
        rows = _lines_needing_quotes(lines, len(columns))
        lines[rows] = _join(_csv_field(values[rows]) for values in columns)
    return lines


def _write_csv(path: Path, header: Sequence[str], lines: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(header) + "\n")
        if lines.size:
            handle.write("\n".join(lines.tolist()))
            handle.write("\n")


def _truth_rows(codes: np.ndarray, names: Sequence[str], table: str, draft: TableDraft, labels: list[str],
                paths: list[str], shown_row: np.ndarray, month: np.ndarray) -> dict[str, np.ndarray]:
    """Ground-truth rows (GROUND_TRUTH_COLUMNS) of the lines whose code is set, in file order."""
    first, _ = _run_bounds(month)
    marked = np.flatnonzero(codes >= 0)  # in file order
    rows, file_index = shown_row[marked], np.maximum(month[marked], 0)
    return {
        "table_name": _repeated(table, marked.size),
        "month": _lookup(labels, month[marked]),
        "record_key": _join((draft.columns[name][rows] for name in TABLES[table].key), "|"),
        "kind": _lookup(names, codes[marked]),
        "source_file": _text(paths)[file_index],
        "source_line": (marked - first[marked] + 2).astype(TEXT),  # the header is line 1
    }


def _write_table(out_dir: Path, draft: TableDraft,
                 calendar: Calendar) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Write the table's file(s); return their relative paths and the ground truth of its defects
    and of its real-world cases. A monthly table has a file for every month but the closed one."""
    table = TABLES[draft.name]
    lines = draft.lines()
    lines[draft.broken_rows] = draft.broken_lines
    # The extra lines join the rows; every line remembers the row it shows.
    lines = np.concatenate([lines, draft.copy_line])
    shown_row = np.concatenate([np.arange(draft.size), draft.copy_source])
    position = np.concatenate([np.arange(draft.size, dtype=np.float64), draft.copy_position])
    defect = np.concatenate([draft.defect, draft.copy_defect])
    case = np.concatenate([draft.case, np.full(draft.copy_source.size, -1, np.int8)])  # copies carry defects
    in_file_order = np.lexsort((position, draft.month[shown_row]))
    lines, shown_row = lines[in_file_order], shown_row[in_file_order]
    defect, case = defect[in_file_order], case[in_file_order]
    month = draft.month[shown_row]

    if table.monthly:
        labels = calendar.month_labels.tolist()
        paths = [f"{table.name}/{label}.csv" for label in labels]
        bounds = np.searchsorted(month, np.arange(len(paths) + 1))
        for index, path in enumerate(paths):
            if index != calendar.closed_month:
                _write_csv(out_dir / path, table.columns, lines[bounds[index]:bounds[index + 1]])
    else:
        labels, paths = [], [f"{table.name}.csv"]
        _write_csv(out_dir / paths[0], table.columns, lines)

    args = (table.name, draft, labels, paths, shown_row, month)
    defects, cases = _truth_rows(defect, ALL_DEFECT_KINDS, *args), _truth_rows(case, REAL_WORLD_CASES, *args)
    written = [path for index, path in enumerate(paths) if not table.monthly or index != calendar.closed_month]
    return written, defects, cases


def _write_ground_truth(out_dir: Path, relative_path: str, parts: list[dict[str, np.ndarray]],
                        kinds: Sequence[str]) -> dict[str, int]:
    """Write a ground truth file (one row per line) and return the number of rows of each kind."""
    truth = {column: np.concatenate([part[column] for part in parts]) for column in GROUND_TRUTH_COLUMNS}
    _write_csv(out_dir / relative_path, GROUND_TRUTH_COLUMNS,
               _render_lines([truth[column] for column in GROUND_TRUTH_COLUMNS]))
    found = Counter(truth["kind"].tolist())
    return {kind: found.get(kind, 0) for kind in kinds}


def _month_truth(calendar: Calendar) -> dict[str, np.ndarray]:
    """The closed month and the soft reopening month as ground-truth rows: only their month is
    set (the one has no file, the other an order_items file without lines)."""
    cases = [(case, month) for case, month in (("empty_month", calendar.closed_month),
                                                ("month_without_lines", calendar.reopening_month)) if month >= 0]
    blank = _repeated("", len(cases))
    return {"table_name": blank, "month": _text([str(calendar.month_labels[month]) for _, month in cases]),
            "record_key": blank, "kind": _text([case for case, _ in cases]), "source_file": blank,
            "source_line": blank}


def _remove_previous_output(out_dir: Path) -> None:
    """Delete the files a previous run wrote (table files, ground truth), nothing else."""
    for table in TABLES.values():
        if table.monthly:
            folder = out_dir / table.name
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.is_file() and path.suffix == ".csv" and MONTH_FILE_RE.match(path.name):
                        path.unlink()
        else:
            (out_dir / f"{table.name}.csv").unlink(missing_ok=True)
    (out_dir / GROUND_TRUTH_FILE).unlink(missing_ok=True)
    (out_dir / REAL_WORLD_FILE).unlink(missing_ok=True)


def _validate(orders: int, months: int, start_month: str | None, defect_rate: float, currency: str) -> None:
    if not isinstance(orders, int) or orders < 1:
        raise ValueError(f"orders must be a positive integer, got {orders!r}")
    if not isinstance(months, int) or months < 1:
        raise ValueError(f"months must be a positive integer, got {months!r}")
    if start_month is not None and (not isinstance(start_month, str) or not MONTH_RE.match(start_month)):
        raise ValueError(f"start_month must look like 'YYYY-MM', got {start_month!r}")
    if not 0 <= defect_rate <= 0.5:
        raise ValueError(f"defect_rate must be between 0 and 0.5, got {defect_rate!r}")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isascii()):
        raise ValueError(f"currency must be an ISO 4217 code such as 'USD', got {currency!r}")


def store_today() -> date:
    """Today's date in the store's time zone (NEXCART_TIMEZONE, default UTC)."""
    return datetime.now(ZoneInfo(load_settings().timezone)).date()


def window_start_month(months: int, today: date) -> str:
    """The first of `months` months that end with the last complete calendar month before today."""
    last_complete = np.datetime64(today.isoformat()[:7], "M") - 1
    return str(last_complete - (months - 1))


def _closed_months(rng: np.random.Generator, start_month: str, months: int) -> tuple[int, int]:
    """The month a seasonal shop is closed, and its soft reopening month (-1 = none).

    The closed month is one in the middle half of the window, never the first or the last (a
    month between two delivered months is what makes it an empty month), in the quiet season
    (outside the Q4 peak) when it can be; none in a window of fewer than 3 months. In a window of
    SOFT_REOPENING_MIN_MONTHS or more, the month after it is the soft reopening, also quiet and
    never the last month."""
    if months < 3:
        return -1, -1
    low, high = max(1, months // 4), min(months - 2, (3 * months) // 4)
    middle = np.arange(low, high + 2)  # one more: the month after the last candidate
    month_of_year = (np.datetime64(start_month, "M").astype(np.int64) + middle) % 12
    quiet = np.asarray(MONTH_SEASONALITY)[month_of_year] < 1
    if months >= SOFT_REOPENING_MIN_MONTHS:
        pairs = middle[:-1][quiet[:-1] & quiet[1:] & (middle[:-1] + 1 <= months - 2)]
        if pairs.size:
            closed = int(pairs[rng.integers(pairs.size)])
            return closed, closed + 1
    choices = middle[:-1][quiet[:-1]] if quiet[:-1].any() else middle[:-1]
    return int(choices[rng.integers(choices.size)]), -1


# One random stream per stage; new stages go last, so the earlier stages' streams stay the same.
STAGES = ("catalogue", "customers", "orders", "lines", "fulfilment", "inventory", "defects", "real_world")


def generate(
    out_dir: Path,
    orders: int = 50_000,
    months: int = 24,
    start_month: str | None = "2024-01",
    seed: int = 42,
    defect_rate: float = 0.03,
    currency: str = "USD",
) -> dict:
    """Write a sample of every contract table under out_dir and return a summary.

    Same arguments, same bytes. start_month None means the `months` months ending with the last
    complete month before today in the store's time zone (what `nexcart generate` does without
    --start-month). The files a previous run wrote (reference snapshots, the monthly YYYY-MM.csv
    drops of the four monthly tables, the ground truth) are replaced; nothing else in out_dir is
    touched.

    Two kinds of "not tidy" data, kept apart:
    - Defects (defect_rate, 0 gives none): rows that break a contract rule, or that the pipeline
      flags (duplicates, unparsable values, orphans, a status outside the contract's list, price
      outliers, ...). defect_rate is the share of each defect-carrying table's rows that get one;
      `_ground_truth/defects.csv` lists every defective line.
    - Real-world shape (at every defect rate, valid by the contract, never flagged): a seasonal
      shop's empty month (no monthly file of any table in one month strictly inside a window of 3
      months or more), orders cancelled before any line was added (in a window of 6 months or
      more, the month after the empty one has only such orders: a soft reopening), and orders
      paid in full by a voucher or gift card (lines discounted to 0, one payment of 0.00).
      `_ground_truth/real_world.csv` lists them, with the same columns ('kind' names the case).
    """
    _validate(orders, months, start_month, defect_rate, currency)
    out_dir = Path(out_dir)
    currency = currency.upper()
    if start_month is None:
        start_month = window_start_month(months, store_today())
    stream = dict(zip(STAGES, np.random.Generator(np.random.PCG64(seed)).spawn(len(STAGES)), strict=True))

    calendar = Calendar.build(start_month, months, *_closed_months(stream["real_world"], start_month, months))
    catalogue = _build_catalogue(stream["catalogue"], _catalogue_size(orders))
    customers = _build_customers(stream["customers"], calendar, max(20, orders // 4))
    placed = _place_orders(stream["orders"], calendar, orders)
    _assign_customers(stream["orders"], placed, customers, calendar)
    quarantined = _reserve_quarantined_orders(stream["defects"], placed, calendar, defect_rate)
    for rows in quarantined.values():
        placed.has_lines[rows] = False
    _abandon_checkouts(stream["real_world"], placed, calendar)
    lines = _draw_lines(stream["lines"], placed, catalogue, calendar)
    lines = _pay_by_voucher(stream["real_world"], placed, lines, calendar)
    payments = _fulfil_orders(stream["fulfilment"], placed, lines, catalogue, calendar)
    transactions = _record_transactions(placed, payments, calendar)
    inventory = _simulate_inventory(stream["inventory"], placed, lines, catalogue, calendar)

    drafts = _reference_drafts(customers, catalogue) + _monthly_drafts(
        placed, lines, transactions, inventory, calendar, currency)
    context = DefectContext(stream["defects"], catalogue.list_cents, lines, next_unknown_order=orders + 1,
                            next_unknown_customer=customers.city.size + 1)
    for draft in drafts:
        _inject_defects(context, draft, defect_rate, quarantined if draft.name == "orders" else {})

    _remove_previous_output(out_dir)
    drafts_by_table = {draft.name: draft for draft in drafts}
    paths: dict[str, list[str]] = {}
    defect_parts, case_parts = [], [_month_truth(calendar)]
    for name in TABLES:
        paths[name], defects, cases = _write_table(out_dir, drafts_by_table[name], calendar)
        defect_parts.append(defects)
        case_parts.append(cases)
    defects = _write_ground_truth(out_dir, GROUND_TRUTH_FILE, defect_parts, ALL_DEFECT_KINDS)
    real_world = _write_ground_truth(out_dir, REAL_WORLD_FILE, case_parts, REAL_WORLD_CASES)

    return {
        "out_dir": str(out_dir),
        "seed": seed,
        "first_month": str(calendar.month_labels[0]),
        "last_month": str(calendar.month_labels[-1]),
        "empty_month": str(calendar.month_labels[calendar.closed_month]) if calendar.closed_month >= 0 else None,
        "month_without_lines": (str(calendar.month_labels[calendar.reopening_month])
                                if calendar.reopening_month >= 0 else None),
        "rows": {name: drafts_by_table[name].line_count for name in TABLES},
        "defects": defects,
        "real_world": real_world,
        "paths": paths,
        "ground_truth": GROUND_TRUTH_FILE,
        "real_world_ground_truth": REAL_WORLD_FILE,
    }
