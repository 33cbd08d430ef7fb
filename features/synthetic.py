"""The synthetic shop: ecrm's embedded default data set.

:func:`synthesize_shop` invents an online shop and returns its four canonical tables (``orders``,
``customers``, ``products``, ``sessions``; see :mod:`features.schema`); :func:`generate_shop` streams the
same tables, in time order, to a writer (``ecrm data synthesize`` writes them straight into the
workspace's parquet files). The same arguments always give the same tables. The generative story, step
by step:

**The calendar.** Shop activity follows a seasonal intensity: a daily rhythm (quiet at night, peaking
in the evening, UTC), a weekly rhythm (Sunday and Monday busiest, Saturday quietest) and a yearly
one (a summer dip around late July, a build-up through October and November, a Black Friday to
Cyber Monday spike, a December gift peak that collapses over Christmas, and January and early-July
sales). Every purchase, acquisition and browsing time is drawn from this intensity: the process runs
in "shop time" (the integral of the intensity), which is mapped back to the clock.

**The catalog.** About a dozen and a half named categories (coffee & tea, pet supplies, clothing,
shoes, electronics accessories, ...). Each product gets a generated name, a list price drawn from its
category's log-normal distribution, and a Zipf-like popularity (a few hits, a long tail). Some
categories are consumables with a typical repurchase interval (coffee about monthly, nappies about
every 25 days); each product also has one complementary product in a partner category (a mug for
coffee, shoes for jeans) that is often bought with it.

**Customers.** The shop has been trading for two years before ``start``. New customers arrive all
the time, the arrival rate growing by about 35 % a year on top of the seasonal intensity; a
customer's first order is their acquisition. Customers are heterogeneous, in the spirit of the BG/NBD
model (Fader, Hardie & Lee 2005): while "alive", a customer buys as a Poisson process with a personal
rate drawn from a Gamma distribution; after every purchase they drop out for good with a personal
probability drawn from a Beta distribution (serial returners drop out a little more easily). About
5 % are loyal heavy buyers (weekly-ish rate, very low drop-out). So there are many one-off buyers, a
majority that lapses at some point, and a core of regulars; nobody says when a customer has lapsed,
they simply stop ordering. The ``customers`` requested are drawn at random from everyone who orders
during the period: most were acquired during it, the rest are the existing base, whose earlier
history lies before ``start`` and is not in the tables (as in a real export). Customer ids are
numbered by acquisition (``C000001`` is the oldest customer). Each customer also has a country (a
few, skewed), a category taste (a Dirichlet mixture concentrated on a few categories) and a typical
basket size.

**Orders.** Each order has several lines:

* *staples*: every customer has a few favourite consumable products and re-buys each one when it is
  about due (its personal repurchase interval has passed), so item-level repeat purchases have a
  realistic rhythm;
* *discovery lines*: a Poisson number of products drawn from the customer's category taste and the
  products' popularity;
* *complements*: a discovery line often brings its complementary product into the basket.

Quantities are mostly one (consumables more often several). Prices are the list price, with
discounts during the sales and an occasional coupon. A customer rarely buys the same durable
product twice. Order ids are invoice-like numbers in chronological order. A customer's orders are at
least an hour apart. A small share of orders (about 3 %) are guest checkouts without a customer id.

**Returns.** Each sale line of a registered customer may be returned (clothing and shoes most often,
groceries hardly ever; some customers return much more than others), fully or partly, a few days to
weeks later, as a separate line with ``is_return=True``, negative quantity and amount, the same unit
price, and order id ``"R"`` + the sale's order id; the returned lines of one order go back together.
Returns falling after the end of the period are not recorded. Guest orders are never returned.

**Sessions.** Browsing events (view, add_to_cart, search, purchase) consistent with the orders:

* every order is preceded by its own session: views of every purchased product each followed by an
  add_to_cart, some extra product views (and now and then a cart that is abandoned), some searches
  (``product_id`` null), and one ``purchase`` event (``product_id`` null) at exactly the order's
  ``ordered_at``; events are seconds to minutes apart;
* customers also have sessions that do not convert (views, searches, some abandoned carts), at a rate
  tied to their purchase rate, from their acquisition (or ``start``) until the end of the period, or,
  for customers who dropped out, until a few weeks after their last order (interest fades);
* guests (``customer_id`` null) browse too, and guest orders have guest sessions.

So: the number of ``purchase`` events equals the number of sale orders (guest ones included), and
``customers.first_seen`` is each customer's first event in the tables (their first session, which
precedes their first order in the period).

All timestamps lie in ``[start, end)``, are UTC with microsecond dtype and whole-second values.
The default size (20,000 customers, 1,000 products, two years) gives about 150,000 orders, 650,000
order lines and three million session events.

**How it is built, and what that costs.** A shop of a million customers has about 150 million session
events, so the shop is never held in memory as a whole:

1. *The skeleton*, drawn for everyone at once because it is small (a few numbers per customer and
   per order): the catalog, the customers with their purchase rates and order times (only the orders
   a customer actually places are drawn, as order statistics), the guest orders, and the
   chronological rank of every order, which is its order id.
2. *Blocks* of consecutive customers with about :data:`_BLOCK_ORDERS` orders together (and a share
   of the guest orders), so that every block is about as big whatever the customers' ages: their
   baskets, taste, order lines, returns and sessions, each block from its own random stream (so
   blocks can be generated in parallel processes). Each block's rows go, grouped by day, into raw
   column files in a scratch folder, ids still integers (customer, product, order rank, session).
3. *The merge*: the sessions are numbered by their first event (one sort of the sessions' start
   times), then every table is read back one time window at a time from all blocks, sorted and
   handed over as an Arrow table (one parquet row group); ids become strings only here.

Memory therefore grows with the block size, not with the shop, apart from the skeleton and the
sessions' start times and ranks (a few hundred bytes per customer). The shop depends on the block
size, which is fixed, so it depends only on the arguments (not on the number of processes).
"""

from __future__ import annotations

import collections
import functools
import math
import multiprocessing
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from features.schema import EVENT_TYPES, TABLES, conform

_T = TypeVar("_T")
_R = TypeVar("_R")

_DAY = 86_400  # seconds
_HOUR = 3_600
_US = 1_000_000

# --------------------------------------------------------------------------------------------------
# Knobs of the generative story (see the module docstring)
# --------------------------------------------------------------------------------------------------

_ACQUISITION_GROWTH_PER_YEAR = 1.35  # arrival rate multiplies by this each year
_WARMUP_DAYS = 730  # the shop already trades this long before the period: its customers are the base
_HEAVY_SHARE = 0.05  # loyal heavy buyers
_RATE_REGULAR = (0.9, 1 / 27)  # Gamma(shape, mean) purchase rate per shop-day, regular customers
_RATE_HEAVY = (4.0, 1 / 7)  # Gamma(shape, mean) purchase rate, heavy buyers
_DROPOUT_REGULAR = (1.3, 5.0)  # Beta(a, b) drop-out probability after each purchase
_DROPOUT_HEAVY = (1.0, 60.0)
_MAX_RATE = 0.4  # per shop-day
_MIN_ORDER_GAP = _HOUR  # seconds between two orders of one customer
_BASKET = (2.0, 3.2)  # Gamma(shape, mean) of the per-customer mean number of discovery lines
_TASTE_CONCENTRATION = 2.5  # Dirichlet concentration of a customer's category taste (smaller = pickier)
_TASTE_GLOBAL_SHARE = 0.15  # share of a customer's taste that is the shop-wide category mix
_STAPLES_PER_CONSUMABLE_TASTE = 3.0  # mean staples = this x the taste's consumable share
_STAPLE_SKIP = 0.1  # chance a due staple is not in the order (bought elsewhere)
_COMPLEMENT_PROB = 0.35  # chance a discovery line brings its complement
_DURABLE_REPEAT = 0.1  # chance a customer's repeat purchase of a durable product is let through
_GUEST_ORDER_SHARE = 0.03
_PROMO_TAKE_UP = 0.45  # share of lines discounted during sales
_COUPON_PROB = 0.04
_RETURN_DELAY = (2.0, 5.0)  # Gamma(shape, scale) days, plus 1.5 days
_BROWSE_PER_ORDER = (2.0, 0.6)  # Gamma(shape, scale): non-converting sessions per expected order
_BROWSE_BASE_RATE = 1 / 120  # extra non-converting sessions per shop-day for every live customer
_BROWSE_TAIL_DAYS = 45.0  # mean browsing tail after a customer's last order, if they dropped out
_GUEST_SESSION_SHARE = 0.3  # guest non-converting sessions per registered session
_EVENT_GAP = (3, 40.0, 900)  # min seconds, mean extra (exponential), max seconds between events

_COUNTRIES = (
    ("United Kingdom", 0.42), ("Germany", 0.16), ("France", 0.11), ("Netherlands", 0.07), ("Spain", 0.06),
    ("Italy", 0.05), ("Ireland", 0.04), ("Belgium", 0.03), ("Sweden", 0.03), ("Poland", 0.03),
)
# Monday .. Sunday
_WEEKLY = np.array([1.12, 1.05, 1.0, 0.98, 0.9, 0.8, 1.1])
# hour of day, UTC
_DIURNAL = np.array([0.15, 0.1, 0.07, 0.06, 0.07, 0.12, 0.25, 0.45, 0.7, 0.9, 1.0, 1.05,
                     1.15, 1.1, 1.05, 1.05, 1.1, 1.2, 1.35, 1.5, 1.55, 1.35, 0.9, 0.45])


@dataclass(frozen=True)
class _Category:
    name: str
    median_price: float
    price_sigma: float
    weight: float  # share of shop demand
    repurchase_days: float  # typical repurchase interval of a consumable; 0 for durable goods
    return_rate: float  # share of sale lines returned, for an average customer
    partners: tuple[str, ...]  # categories holding complementary products
    qualifiers: tuple[str, ...]
    nouns: tuple[str, ...]
    variants: tuple[str, ...]


_CATEGORIES: tuple[_Category, ...] = (
    _Category("Coffee & Tea", 9.5, 0.4, 9, 30, 0.01, ("Kitchen & Dining", "Snacks & Pantry"),
              ("Organic", "Fairtrade", "Single-Origin", "Dark Roast", "Decaf", "Classic", "Premium", "Everyday",
               "Italian", "Smooth"),
              ("Espresso Beans", "Ground Coffee", "Coffee Pods", "Green Tea", "Earl Grey", "Breakfast Tea",
               "Herbal Infusion", "Chai Blend", "Matcha"),
              ("250 g", "500 g", "1 kg", "20 pack", "50 pack", "Tin")),
    _Category("Clothing", 32, 0.5, 8, 0, 0.18, ("Shoes", "Clothing"),
              ("Slim", "Relaxed", "Organic Cotton", "Merino", "Linen", "Oversized", "Classic", "Striped",
               "Essential", "Recycled"),
              ("T-Shirt", "Jeans", "Hoodie", "Jumper", "Dress", "Chinos", "Shirt", "Jacket", "Leggings",
               "Socks 5-Pack"),
              ("XS", "S", "M", "L", "XL", "Navy", "Black", "Olive")),
    _Category("Snacks & Pantry", 5.5, 0.45, 8, 21, 0.01, ("Coffee & Tea",),
              ("Organic", "Salted", "Honey", "Dark Chocolate", "Spicy", "Gluten-Free", "Classic", "Wholegrain",
               "Roasted", "Sea Salt"),
              ("Almonds", "Granola", "Oat Bars", "Olive Oil", "Pasta", "Crisps", "Cookies", "Peanut Butter",
               "Rice Crackers", "Dried Mango"),
              ("Single", "Family Pack", "Multipack", "Jar", "200 g", "500 g")),
    _Category("Beauty & Skincare", 16, 0.55, 8, 50, 0.03, ("Personal Care",),
              ("Hydrating", "Vitamin C", "Gentle", "Night", "Daily", "Brightening", "Sensitive", "Rose", "Matte",
               "Repair"),
              ("Face Cream", "Serum", "Cleanser", "Sunscreen SPF50", "Lip Balm", "Eye Cream", "Face Mask",
               "Toner", "Body Lotion"),
              ("30 ml", "50 ml", "100 ml", "Travel Size", "Duo")),
    _Category("Personal Care", 7, 0.45, 7, 35, 0.02, ("Beauty & Skincare", "Household Supplies"),
              ("Fresh", "Mint", "Sensitive", "Herbal", "Charcoal", "Unscented", "Citrus", "Classic", "Ocean",
               "Aloe"),
              ("Shampoo", "Conditioner", "Shower Gel", "Toothpaste", "Deodorant", "Hand Soap", "Razor Blades",
               "Body Wash", "Mouthwash"),
              ("250 ml", "500 ml", "2 pack", "4 pack", "Refill")),
    _Category("Household Supplies", 8, 0.45, 7, 40, 0.01, ("Personal Care", "Kitchen & Dining"),
              ("Eco", "Lemon", "Lavender", "Heavy-Duty", "Biodegradable", "Fragrance-Free", "Ultra", "Compact",
               "Fresh", "Concentrated"),
              ("Laundry Detergent", "Dish Tablets", "Surface Cleaner", "Bin Bags", "Paper Towels", "Sponges",
               "Fabric Softener", "Toilet Paper", "Glass Cleaner"),
              ("Refill", "Bulk", "12 pack", "24 pack", "1 l", "2 l")),
    _Category("Kitchen & Dining", 24, 0.65, 6, 0, 0.05, ("Coffee & Tea", "Home Decor"),
              ("Stoneware", "Stainless", "Non-Stick", "Glass", "Bamboo", "Ceramic", "Enamel", "Copper", "Nordic",
               "Classic"),
              ("Mug", "Cafetiere", "Frying Pan", "Chef's Knife", "Chopping Board", "Tea Towel Set", "Salad Bowl",
               "Storage Jars", "Kettle", "Dinner Plates"),
              ("White", "Black", "Grey", "Sage", "Set of 2", "Set of 4")),
    _Category("Electronics Accessories", 22, 0.8, 6, 0, 0.08, ("Electronics Accessories",),
              ("Wireless", "Fast", "USB-C", "Braided", "Magnetic", "Compact", "Noise-Cancelling", "Portable",
               "Ultra-Slim", "Pro"),
              ("Charger", "Phone Case", "Earbuds", "Power Bank", "Charging Cable", "Screen Protector",
               "Bluetooth Speaker", "Laptop Stand", "Mouse", "Keyboard"),
              ("Black", "White", "1 m", "2 m", "10000 mAh", "20000 mAh")),
    _Category("Books", 12, 0.35, 6, 0, 0.03, ("Stationery", "Books"),
              ("The Silent", "The Last", "A Little", "The Hidden", "Midnight", "The Lost", "Beyond the",
               "The Great", "Winter", "The Secret"),
              ("Garden", "Lighthouse", "Kitchen", "Orchard", "Library", "River", "Mountain", "Island", "Letters",
               "Atlas"),
              ("Paperback", "Hardback", "Illustrated Edition", "Box Set")),
    _Category("Pet Supplies", 14, 0.55, 5, 30, 0.02, ("Pet Supplies",),
              ("Grain-Free", "Salmon", "Chicken", "Senior", "Puppy", "Kitten", "Natural", "Dental", "Indoor",
               "Adult"),
              ("Dog Food", "Cat Food", "Dog Treats", "Cat Litter", "Chew Toy", "Scratching Post", "Pet Shampoo",
               "Cat Treats", "Lead"),
              ("1 kg", "3 kg", "7 kg", "Small", "Large", "Multipack")),
    _Category("Home Decor", 29, 0.7, 5, 0, 0.07, ("Kitchen & Dining", "Garden & Outdoor"),
              ("Linen", "Velvet", "Boho", "Scandi", "Rattan", "Marble", "Vintage", "Minimalist", "Woven",
               "Botanical"),
              ("Cushion Cover", "Throw", "Scented Candle", "Vase", "Photo Frame", "Wall Art", "Table Lamp",
               "Mirror", "Rug", "Plant Pot"),
              ("Small", "Medium", "Large", "Ivory", "Terracotta", "Charcoal")),
    _Category("Toys & Games", 19, 0.6, 5, 0, 0.05, ("Baby & Kids", "Books"),
              ("Wooden", "Magnetic", "Deluxe", "Junior", "Family", "Classic", "Mini", "Glow-in-the-Dark", "Eco",
               "Creative"),
              ("Building Blocks", "Puzzle", "Board Game", "Plush Bear", "Train Set", "Craft Kit", "Card Game",
               "Doll House", "Science Kit"),
              ("3+", "5+", "8+", "500 pieces", "1000 pieces")),
    _Category("Baby & Kids", 13, 0.55, 4, 25, 0.04, ("Toys & Games", "Personal Care"),
              ("Sensitive", "Organic", "Night", "Soft", "Hypoallergenic", "Travel", "Eco", "Cotton", "Gentle",
               "Classic"),
              ("Nappies", "Baby Wipes", "Baby Lotion", "Sippy Cup", "Bib Set", "Baby Shampoo", "Teether",
               "Swaddle", "Dummy"),
              ("Size 2", "Size 3", "Size 4", "Size 5", "Pack of 3", "Value Pack")),
    _Category("Shoes", 62, 0.4, 4, 0, 0.2, ("Clothing", "Sports & Outdoors"),
              ("Leather", "Suede", "Canvas", "Waterproof", "Classic", "Lightweight", "Chunky", "Vegan", "Retro",
               "Trail"),
              ("Trainers", "Boots", "Sandals", "Loafers", "Running Shoes", "Slippers", "Chelsea Boots",
               "Sneakers"),
              ("EU 38", "EU 39", "EU 40", "EU 41", "EU 42", "EU 43", "EU 44")),
    _Category("Sports & Outdoors", 28, 0.7, 4, 0, 0.08, ("Clothing", "Shoes"),
              ("Insulated", "Lightweight", "Pro", "Foldable", "Adjustable", "Non-Slip", "Waterproof", "Compact",
               "Trail", "Performance"),
              ("Yoga Mat", "Water Bottle", "Resistance Bands", "Dumbbells", "Backpack", "Camping Mug",
               "Head Torch", "Cycling Gloves", "Foam Roller"),
              ("Blue", "Black", "Green", "500 ml", "1 l", "Pair")),
    _Category("Stationery", 6, 0.55, 4, 0, 0.02, ("Books",),
              ("Dotted", "Recycled", "Pastel", "Fine-Tip", "Hardcover", "Kraft", "Spiral", "Premium", "Pocket",
               "Weekly"),
              ("Notebook", "Gel Pens", "Planner", "Sticky Notes", "Highlighters", "Sketchbook", "Greeting Cards",
               "Washi Tape", "Pencil Set"),
              ("A5", "A4", "Set of 6", "Set of 12", "Black", "Assorted")),
    _Category("Garden & Outdoor", 19, 0.7, 3, 0, 0.05, ("Home Decor",),
              ("Heirloom", "Solar", "Galvanised", "Ceramic", "Organic", "Ergonomic", "Weatherproof", "Hanging",
               "Cottage", "Compact"),
              ("Seed Kit", "Plant Food", "Watering Can", "Pruning Shears", "Bird Feeder", "String Lights",
               "Planter", "Garden Gloves", "Compost"),
              ("Small", "Large", "Set of 3", "5 l", "10 l")),
)


# --------------------------------------------------------------------------------------------------
# The calendar
# --------------------------------------------------------------------------------------------------


def _black_fridays(years: np.ndarray) -> list[pd.Timestamp]:
    """The day after the fourth Thursday of November, for each year."""
    out = []
    for y in years:
        nov1 = pd.Timestamp(year=int(y), month=11, day=1)
        first_thu = 1 + (3 - nov1.dayofweek) % 7
        out.append(pd.Timestamp(year=int(y), month=11, day=first_thu + 21 + 1))
    return out


def _yearly_factor(days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Yearly seasonality (unnormalised) and the sale-period flag for calendar days (naive dates)."""
    doy = days.dayofyear.to_numpy().astype(float)
    month = days.month.to_numpy()
    dom = days.day.to_numpy()
    f = 1.0 - 0.22 * np.exp(-0.5 * ((doy - 205.0) / 28.0) ** 2)  # summer dip, late July
    f += 0.25 * np.clip((doy - 274.0) / 60.0, 0.0, 1.0)  # build-up from October into December
    dec = month == 12
    f += np.where(dec & (dom <= 21), 0.55, 0.0)  # gift season
    f *= np.where(dec & (dom >= 24) & (dom <= 26), 0.45, 1.0)  # Christmas
    f *= np.where(dec & (dom >= 27), 0.85, 1.0)
    january_sale = (month == 1) & (dom <= 14)
    summer_sale = (month == 7) & (dom <= 14)
    f += np.where(january_sale, 0.2, 0.0) + np.where(summer_sale, 0.1, 0.0)
    promo = january_sale | summer_sale
    for bf in _black_fridays(np.unique(days.year.to_numpy())):  # Black Friday .. Cyber Monday
        cyber = (days >= bf) & (days <= bf + pd.Timedelta(days=3))
        f = np.where(cyber, f * 1.9, f)
        promo = promo | cyber
    return f, promo


_REF_DAYS = pd.date_range("2023-01-01", "2023-12-31", freq="D")
_YEARLY_MEAN = float(_yearly_factor(_REF_DAYS)[0].mean())
_WEEKLY_N = _WEEKLY / _WEEKLY.mean()
_DIURNAL_N = _DIURNAL / _DIURNAL.mean()


class _Clock:
    """The warm-up year and the period on an hourly grid, with the seasonal intensity and its integral
    ("shop time"; one shop-day is one calendar day of average intensity).

    Times are whole (or float) seconds since the origin, one warm-up year before ``start``; the period
    is ``[first_sec, last_sec]``.
    """

    def __init__(self, start: pd.Timestamp, end: pd.Timestamp) -> None:
        origin = start - pd.Timedelta(days=_WARMUP_DAYS)
        self.origin_us = origin.value // 1000
        span_us = end.value // 1000 - self.origin_us
        self.first_sec = _WARMUP_DAYS * _DAY  # start of the period
        self.last_sec = (span_us - 1) // _US  # the last whole second before ``end``
        span_s = span_us / _US
        n_hours = max(1, math.ceil(span_s / _HOUR))
        self.edges = np.minimum(np.arange(n_hours + 1) * float(_HOUR), span_s)
        hour_starts = origin.tz_localize(None) + pd.to_timedelta(self.edges[:-1], unit="s")
        uniq_days, day_idx = np.unique(hour_starts.normalize().to_numpy(), return_inverse=True)
        yearly, promo = _yearly_factor(pd.DatetimeIndex(uniq_days))
        self.intensity = (yearly[day_idx] / _YEARLY_MEAN * _WEEKLY_N[hour_starts.dayofweek.to_numpy()]
                          * _DIURNAL_N[hour_starts.hour.to_numpy()])
        self.promo = promo[day_idx]
        dur_days = np.diff(self.edges) / _DAY
        self.cum = np.concatenate([[0.0], np.cumsum(self.intensity * dur_days)])
        years = ((self.edges[:-1] + self.edges[1:]) / 2 - self.first_sec) / (365.25 * _DAY)
        growth = _ACQUISITION_GROWTH_PER_YEAR ** years
        self.cum_growth = np.concatenate([[0.0], np.cumsum(self.intensity * growth * dur_days)])

    def to_seconds(self, shop_time: np.ndarray, *, growth: bool = False) -> np.ndarray:
        """Map shop time (or growth-weighted shop time) to whole seconds, clipped to before ``end``."""
        cum = self.cum_growth if growth else self.cum
        sec = np.floor(np.interp(shop_time, cum, self.edges)).astype(np.int64)
        return np.clip(sec, 0, self.last_sec)

    def to_shop_time(self, sec: np.ndarray) -> np.ndarray:
        """Map seconds to shop time (the integral of the intensity since the origin)."""
        return np.interp(np.asarray(sec, dtype=float), self.edges, self.cum)

    def draw_seconds(self, rng: np.random.Generator, n: int, *, warmup: bool = False) -> np.ndarray:
        """``n`` sorted times following the growth-weighted intensity, over the period (and warm-up)."""
        lo = 0.0 if warmup else float(np.interp(self.first_sec, self.edges, self.cum_growth))
        sec = self.to_seconds(lo + rng.random(n) * (self.cum_growth[-1] - lo), growth=True)
        return np.sort(sec if warmup else np.maximum(sec, self.first_sec))

    def is_promo(self, sec: np.ndarray) -> np.ndarray:
        """Whether each second falls in a sale period."""
        return self.promo[np.minimum(sec // _HOUR, len(self.promo) - 1)]

    def timestamps(self, sec: np.ndarray) -> pa.Array:
        """Whole seconds since the origin as UTC microsecond timestamps (Arrow)."""
        return pa.array(self.origin_us + np.asarray(sec, dtype=np.int64) * _US, type=pa.timestamp("us", tz="UTC"))


# --------------------------------------------------------------------------------------------------
# How the shop is built (see "How it is built" in the module docstring)
# --------------------------------------------------------------------------------------------------

_BLOCK_ORDERS = 150_000  # orders of the customers generated together; the shop depends on it
_CANDIDATE_CHUNK = 250_000  # candidate customers whose purchase times are drawn together
_ROW_GROUP_ROWS = 1_000_000  # rows per written chunk (parquet row group), about: whole days are kept together


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _gamma(rng: np.random.Generator, shape: float, mean: float, size: int) -> np.ndarray:
    """Gamma draws parameterised by shape and mean."""
    return rng.gamma(shape, mean / shape, size)


def _group_starts(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """Start offset of each group 0..n_groups-1 in an array sorted by group (length n_groups + 1)."""
    return np.searchsorted(sorted_keys, np.arange(n_groups + 1))


def _rank_in_group(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """0-based position of each row within its group, for rows sorted by group."""
    starts = _group_starts(sorted_keys, n_groups)
    return np.arange(len(sorted_keys)) - starts[sorted_keys]


def _lex_order(keys: list[np.ndarray]) -> np.ndarray:
    """The stable lexicographic order of rows by integer ``keys`` (most significant first), as
    ``np.lexsort(keys[::-1])``; when the keys' ranges and the row index fit in 63 bits, computed by
    one plain sort of the packed keys, several times faster than an index sort."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lows = [int(k.min()) for k in keys]
    bits = [(int(k.max()) - low).bit_length() for k, low in zip(keys, lows)]
    idx_bits = (n - 1).bit_length()
    if sum(bits) + idx_bits > 63:
        return np.lexsort(keys[::-1])
    packed = np.zeros(n, dtype=np.int64)
    for k, low, b in zip(keys, lows, bits):
        packed <<= b
        packed |= k.astype(np.int64) - low
    packed <<= idx_bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << idx_bits) - 1)


def _sample_rows(rng: np.random.Generator, cum_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one column per entry of ``rows`` from the row-wise cumulative distributions ``cum_rows``."""
    out = np.empty(len(rows), dtype=np.int64)
    step = 1 << 18  # keep the comparison matrix small
    for i in range(0, len(rows), step):
        r = rows[i:i + step]
        u = rng.random(len(r))
        out[i:i + step] = (cum_rows[r] < u[:, None]).sum(axis=1)
    return np.minimum(out, cum_rows.shape[1] - 1)


def _psych_price(p: np.ndarray) -> np.ndarray:
    """Round to shop-like prices: 4.49, 12.99, 0.89."""
    p = np.maximum(p, 0.3)
    return np.round(np.where(p < 10, np.ceil(p * 10) / 10, np.ceil(p)) - 0.01, 2)


def _format_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """``prefix`` + each non-negative number zero-padded to ``width`` digits (to the largest number's
    digits if it has more), as an Arrow string array built digit by digit in numpy: no Python string
    per row."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers):
        width = max(width, len(str(int(numbers.max()))))
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    size = len(head) + width
    chars = np.empty((len(numbers), size), dtype=np.uint8)
    chars[:, :len(head)] = head
    rest = numbers.astype(np.uint32 if len(numbers) == 0 or numbers.max() < 2 ** 32 else np.uint64)
    for pos in range(size - 1, len(head) - 1, -1):  # one pass per digit position
        chars[:, pos] = rest % 10 + ord("0")
        rest //= 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int32) * size
    return pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(chars))


def _id_labels(prefix: str, numbers: np.ndarray, width: int) -> tuple[pa.StringArray, np.ndarray]:
    """Ids for ``numbers`` as (labels, position of each number's label): every number of their
    ``[min, max]`` range formatted once when that range is no longer than the column (ids of one time
    window are nearly consecutive), else one label per row."""
    if len(numbers) == 0:
        return _format_ids(prefix, numbers, width), np.zeros(0, dtype=np.int64)
    lo, hi = int(numbers.min()), int(numbers.max())
    if hi - lo + 1 <= len(numbers):
        return _format_ids(prefix, np.arange(lo, hi + 1), width), numbers - lo
    return _format_ids(prefix, numbers, width), np.arange(len(numbers))


def _id_column(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """The string id column ``prefix`` + zero-padded ``numbers``."""
    labels, index = _id_labels(prefix, numbers, width)
    return labels.take(pa.array(index))


def _lookup(labels: pa.Array, codes: np.ndarray) -> pa.Array:
    """``labels[codes]`` as an Arrow column, null where the code is -1."""
    return labels.take(pa.array(codes, mask=codes < 0))


# --------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------


@dataclass
class _Catalog:
    """The products: category, list price, name, complement, and the popularity to sample them by."""

    cats: tuple[_Category, ...]
    cat_weight: np.ndarray  # (C,) normalised
    product_cat: np.ndarray  # (P,)
    price: np.ndarray  # (P,) list price
    names: list[str]
    complement: np.ndarray  # (P,) product index
    order: np.ndarray  # products sorted by category
    cum: np.ndarray  # category index + within-category cumulative popularity, aligned with ``order``

    def sample(self, rng: np.random.Generator, cats: np.ndarray) -> np.ndarray:
        """One product per entry of ``cats``, by popularity within the category."""
        pos = np.searchsorted(self.cum, cats + rng.random(len(cats)), side="right")
        return self.order[np.minimum(pos, len(self.order) - 1)]


def _make_catalog(n_products: int, rng: np.random.Generator) -> _Catalog:
    """``n_products`` products over the categories (each category at least once), with log-normal
    list prices, Zipf-like popularity within their category, generated names and a complement."""
    cats = _CATEGORIES[: min(len(_CATEGORIES), n_products)]
    n_cat = len(cats)
    cat_weight = np.array([c.weight for c in cats], dtype=float)
    cat_weight /= cat_weight.sum()
    product_cat = np.concatenate([np.arange(n_cat), rng.choice(n_cat, n_products - n_cat, p=cat_weight)])
    product_cat = rng.permutation(product_cat)
    log_price = np.log([c.median_price for c in cats])[product_cat]
    sigma = np.array([c.price_sigma for c in cats])[product_cat]
    price = _psych_price(np.exp(log_price + sigma * rng.standard_normal(n_products)))

    # Zipf-like popularity within each category: weight 1 / rank^1.1 over a random ranking
    order = np.argsort(product_cat, kind="stable")
    sorted_cat = product_cat[order]
    rank = _rank_in_group(sorted_cat, n_cat)
    rank = rank[np.lexsort((rng.random(n_products), sorted_cat))]  # shuffle ranks within each category
    pop = 1.0 / (1.0 + rank) ** 1.1
    within = np.cumsum(pop)
    starts = _group_starts(sorted_cat, n_cat)
    before = np.concatenate([[0.0], within])[starts[sorted_cat]]
    totals = (within[starts[1:] - 1] - np.concatenate([[0.0], within])[starts[:-1]])[sorted_cat]
    cum = sorted_cat + (within - before) / totals
    cum[starts[1:] - 1] = np.arange(n_cat) + 1.0  # exact category boundaries

    names: list[str] = [""] * n_products
    for c_idx, cat in enumerate(cats):
        members = order[starts[c_idx]:starts[c_idx + 1]]
        combos = len(cat.qualifiers) * len(cat.nouns) * len(cat.variants)
        picks = rng.choice(combos, size=min(len(members), combos), replace=False)
        for j, prod in enumerate(members):
            q, rest = divmod(int(picks[j % combos]), len(cat.nouns) * len(cat.variants))
            n, v = divmod(rest, len(cat.variants))
            name = f"{cat.qualifiers[q]} {cat.nouns[n]}, {cat.variants[v]}"
            names[prod] = name if j < combos else f"{name} No. {j // combos + 1}"

    catalog = _Catalog(cats, cat_weight, product_cat, price, names, np.zeros(0, dtype=np.int64), order, cum)
    idx = {c.name: i for i, c in enumerate(cats)}
    partner_lists = [[idx[p] for p in c.partners if p in idx] or [i] for i, c in enumerate(cats)]
    pick = rng.random(n_products)
    partner_cat = np.array([partner_lists[c][int(u * len(partner_lists[c]))] for c, u in zip(product_cat, pick)],
                           dtype=np.int64)
    catalog.complement = catalog.sample(rng, partner_cat)
    return catalog




# --------------------------------------------------------------------------------------------------
# The skeleton: customers, their orders' times, guest orders, order numbering
# --------------------------------------------------------------------------------------------------


@dataclass
class _Candidates:
    """People acquired since the clock's origin, with the traits that decide whether and when they order."""

    first_sec: np.ndarray  # acquisition = first order, seconds since the clock's origin (sorted)
    rate: np.ndarray  # purchases per shop-day while alive
    dropout: np.ndarray  # drop-out probability after each purchase
    returner: np.ndarray  # return propensity multiplier (mean 1)

    def take(self, idx: np.ndarray | slice) -> _Candidates:
        """The candidates at ``idx``."""
        return _Candidates(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _make_candidates(n: int, clock: _Clock, rng: np.random.Generator) -> _Candidates:
    """``n`` people acquired since the origin (in acquisition order) with their purchase traits."""
    first_sec = clock.draw_seconds(rng, n, warmup=True)
    heavy = rng.random(n) < _HEAVY_SHARE
    rate = np.where(heavy, _gamma(rng, *_RATE_HEAVY, n), _gamma(rng, *_RATE_REGULAR, n))
    rate = np.clip(rate, 1e-4, _MAX_RATE)
    dropout = np.where(heavy, rng.beta(*_DROPOUT_HEAVY, n), rng.beta(*_DROPOUT_REGULAR, n))
    returner = rng.gamma(1.0, 1.0, n)
    dropout = np.clip(dropout * (0.75 + 0.25 * returner), 1e-4, 0.95)
    return _Candidates(first_sec, rate, dropout, returner)


def _first_order_statistics(start: np.ndarray, window: np.ndarray, n_uniform: np.ndarray, keep: np.ndarray,
                            rng: np.random.Generator) -> np.ndarray:
    """The ``keep[i]`` smallest of ``n_uniform[i]`` uniform times on ``[start[i], start[i] + window[i]]``,
    for every ``i`` (``keep <= n_uniform``), in order of ``i`` and time, drawing only those: the sorted
    uniforms are the running sums of ``n + 1`` exponential spacings divided by their total, and the
    spacings after the kept ones add up to a Gamma(n - keep + 1) variable."""
    idx = np.repeat(np.arange(len(start)), keep)
    running = np.concatenate([[0.0], np.cumsum(rng.standard_exponential(len(idx)))])
    bounds = np.concatenate([[0], np.cumsum(keep)])
    before = running[bounds[:-1]]
    total = running[bounds[1:]] - before + rng.gamma(n_uniform - keep + 1.0)
    frac = (running[1:] - before[idx]) / total[idx]
    return start[idx] + frac * window[idx]


def _spread_orders(o_cust: np.ndarray, o_sec: np.ndarray, first: np.ndarray, clock: _Clock) -> np.ndarray:
    """Order times moved so that a customer's orders are at least ``_MIN_ORDER_GAP`` apart (rows sorted by
    customer and time; ``first[c]``: row of customer ``c``'s first order):
    ``t'_k = k * gap + max_{j <= k} (t_j - j * gap)``, one running maximum over all customers."""
    rank = np.arange(len(o_cust)) - first[o_cust]
    big = np.int64(clock.last_sec + (int(rank.max(initial=0)) + 1) * _MIN_ORDER_GAP + 1)
    shifted = o_sec - rank * _MIN_ORDER_GAP + o_cust * big
    return np.maximum.accumulate(shifted) - o_cust * big + rank * _MIN_ORDER_GAP


def _purchase_times(cand: _Candidates, clock: _Clock, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order times of candidates: (candidate index, seconds) sorted by candidate and time, plus each
    candidate's drop-out second (-1 while still alive at the end).

    From the acquisition order on, a candidate would buy as a Poisson process until the end; they stop
    for good after a geometric number of repeat purchases. Only the purchases made are drawn."""
    n = len(cand.first_sec)
    a = clock.to_shop_time(cand.first_sec)
    window = np.maximum(clock.cum[-1] - a, 0.0)
    n_poisson = rng.poisson(cand.rate * window)  # purchases if they stayed alive
    allowed = rng.geometric(cand.dropout) - 1  # repeat purchases before dropping out
    dropped = allowed <= n_poisson
    keep = np.minimum(allowed, n_poisson)
    repeat_time = _first_order_statistics(a, window, n_poisson, keep, rng)
    o_cust = np.repeat(np.arange(n), keep + 1)
    first = np.concatenate([[0], np.cumsum(keep + 1)])
    repeat = np.ones(len(o_cust), dtype=bool)
    repeat[first[:-1]] = False
    o_sec = np.empty(len(o_cust), dtype=np.int64)
    o_sec[first[:-1]] = cand.first_sec
    o_sec[repeat] = clock.to_seconds(repeat_time)
    o_sec = _spread_orders(o_cust, o_sec, first, clock)
    inside = o_sec <= clock.last_sec
    o_cust, o_sec = o_cust[inside], o_sec[inside]
    last = o_sec[_group_starts(o_cust, n)[1:] - 1]  # every candidate keeps at least the first order
    return o_cust, o_sec, np.where(dropped, last, -1)


def _orders_in_period(cand: _Candidates, clock: _Clock, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_purchase_times` of the candidates in chunks (bounded memory), keeping the orders placed in
    the period: (candidate index, seconds) sorted by candidate and time, and every drop-out second."""
    custs, secs, drops = [], [], []
    for lo in range(0, len(cand.first_sec), _CANDIDATE_CHUNK):
        o_cust, o_sec, drop_sec = _purchase_times(cand.take(slice(lo, lo + _CANDIDATE_CHUNK)), clock, rng)
        inside = o_sec >= clock.first_sec
        custs.append(o_cust[inside] + lo)
        secs.append(o_sec[inside])
        drops.append(drop_sec)
    return np.concatenate(custs), np.concatenate(secs), np.concatenate(drops)


@dataclass
class _Base:
    """The shop's customers (numbered by acquisition) and the times of their orders in the period."""

    cand: _Candidates
    o_cust: np.ndarray  # customer of each order, sorted by customer and time
    o_sec: np.ndarray
    o_start: np.ndarray  # row of each customer's first order in ``o_cust`` (length n + 1)
    drop_sec: np.ndarray  # drop-out second, -1 while still alive at the end


def _customer_base(n: int, clock: _Clock, rng: np.random.Generator) -> _Base:
    """``n`` customers with an order in the period, drawn at random from everyone acquired since the
    origin, with their orders in the period."""
    n_cand = 2 * n
    while True:
        cand = _make_candidates(n_cand, clock, rng)
        o_cust, o_sec, drop_sec = _orders_in_period(cand, clock, rng)
        eligible = np.flatnonzero(np.bincount(o_cust, minlength=n_cand) > 0)
        if len(eligible) >= n:
            break
        n_cand = int(n_cand * 1.2 * n / max(len(eligible), 1)) + 1
    chosen = np.sort(rng.choice(eligible, n, replace=False))
    new_index = np.full(n_cand, -1, dtype=np.int64)
    new_index[chosen] = np.arange(n)
    keep = new_index[o_cust] >= 0
    o_cust = new_index[o_cust[keep]]
    return _Base(cand.take(chosen), o_cust, o_sec[keep], _group_starts(o_cust, n), drop_sec[chosen])


@dataclass
class _BlockInput:
    """Everything one block needs from the skeleton (small enough to send to a worker process)."""

    index: int
    c0: int  # global index of the block's first customer
    cand: _Candidates  # the block's customers
    o_cust: np.ndarray  # block-local customer of each registered order, sorted by customer and time
    o_sec: np.ndarray
    drop_sec: np.ndarray  # per customer, -1 while still alive at the end
    g_sec: np.ndarray  # the block's guest orders
    order_rank: np.ndarray  # chronological rank of each order of the block: registered ones, then guests
    seed: np.random.SeedSequence


@dataclass
class _Plan:
    """The skeleton of the shop: its customers and all order times, and how the rest is cut in blocks."""

    base: _Base
    g_sec: np.ndarray  # guest order times, sorted
    order_rank: np.ndarray  # chronological rank of every order: the registered ones (as in ``base``), then guests
    blocks: list[tuple[int, int]]  # customer ranges [c0, c1)

    def block_input(self, block: int, seed: np.random.SeedSequence) -> _BlockInput:
        """The skeleton of ``block``: its customers, their orders and every n-th guest order."""
        c0, c1 = self.blocks[block]
        o0, o1 = self.base.o_start[c0], self.base.o_start[c1]
        guests = np.arange(block, len(self.g_sec), len(self.blocks))
        rank = self.order_rank[np.concatenate([np.arange(o0, o1), len(self.base.o_cust) + guests])]
        return _BlockInput(block, c0, self.base.cand.take(slice(c0, c1)), self.base.o_cust[o0:o1] - c0,
                           self.base.o_sec[o0:o1], self.base.drop_sec[c0:c1], self.g_sec[guests], rank, seed)


def _make_plan(n: int, clock: _Clock, block_orders: int, rng: np.random.Generator) -> _Plan:
    """Customers, order times, guest order times and each order's chronological rank (ties: registered
    orders by customer, then guests), and blocks of consecutive customers with about ``block_orders``
    orders each."""
    base = _customer_base(n, clock, rng)
    g_sec = clock.draw_seconds(rng, int(round(_GUEST_ORDER_SHARE * len(base.o_cust))))
    all_sec = np.concatenate([base.o_sec, g_sec])
    order_rank = np.empty(len(all_sec), dtype=np.int64)
    order_rank[_lex_order([all_sec])] = np.arange(len(all_sec))
    cuts = np.searchsorted(base.o_start, np.arange(block_orders, len(base.o_cust), block_orders))
    bounds = np.unique(np.concatenate([[0], cuts, [n]])).tolist()
    blocks = list(zip(bounds[:-1], bounds[1:]))
    return _Plan(base, g_sec, order_rank, blocks)


# --------------------------------------------------------------------------------------------------
# A block's customers: baskets, taste, country
# --------------------------------------------------------------------------------------------------


@dataclass
class _Customers:
    """The customers of one block: purchase traits from the skeleton, the rest drawn with the block."""

    first_sec: np.ndarray  # acquisition, seconds since the clock's origin
    rate: np.ndarray  # purchases per shop-day while alive
    returner: np.ndarray  # return propensity multiplier (mean 1)
    basket: np.ndarray  # mean discovery lines per order
    browse: np.ndarray  # non-converting sessions per expected order
    taste: np.ndarray  # (N, C) category taste
    taste_cum: np.ndarray  # (N, C) cumulative category taste
    country: np.ndarray  # index into _COUNTRIES


def _block_customers(cand: _Candidates, catalog: _Catalog, rng: np.random.Generator) -> _Customers:
    """Basket size, browsing, category taste (a Dirichlet mixed with the shop-wide mix) and country of
    the candidates ``cand``."""
    n = len(cand.first_sec)
    basket = _gamma(rng, *_BASKET, n)
    browse = rng.gamma(*_BROWSE_PER_ORDER, n)
    n_cat = len(catalog.cats)
    dirichlet = rng.gamma(_TASTE_CONCENTRATION * catalog.cat_weight, 1.0, (n, n_cat)) + 1e-12
    dirichlet /= dirichlet.sum(axis=1, keepdims=True)
    taste = _TASTE_GLOBAL_SHARE * catalog.cat_weight + (1 - _TASTE_GLOBAL_SHARE) * dirichlet
    taste_cum = np.cumsum(taste, axis=1)
    taste_cum /= taste_cum[:, -1:]
    probs = np.array([w for _, w in _COUNTRIES])
    country = rng.choice(len(_COUNTRIES), n, p=probs / probs.sum()).astype(np.int8)
    return _Customers(cand.first_sec, cand.rate, cand.returner, basket, browse, taste, taste_cum, country)


# --------------------------------------------------------------------------------------------------
# Order lines
# --------------------------------------------------------------------------------------------------


def _staple_lines(cust: _Customers, catalog: _Catalog, o_cust: np.ndarray, o_sec: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(order index, product) of staple re-purchases: each staple is re-bought once it is due."""
    n = len(cust.first_sec)
    consumable = np.array([c.repurchase_days > 0 for c in catalog.cats])
    if not consumable.any() or len(o_cust) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cons_taste = cust.taste * consumable
    share = cons_taste.sum(axis=1)
    n_staples = np.minimum(rng.poisson(_STAPLES_PER_CONSUMABLE_TASTE * share), 6)
    pair_cust = np.repeat(np.arange(n), n_staples)
    cons_cum = np.cumsum(cons_taste, axis=1)
    cons_cum /= cons_cum[:, -1:]
    pair_prod = catalog.sample(rng, _sample_rows(rng, cons_cum, pair_cust))
    key = np.unique(pair_cust.astype(np.int64) * len(catalog.price) + pair_prod)
    pair_cust, pair_prod = key // len(catalog.price), key % len(catalog.price)
    days = np.array([c.repurchase_days for c in catalog.cats])[catalog.product_cat[pair_prod]]
    interval = days * _DAY * rng.lognormal(0.0, 0.25, len(pair_prod))

    n_orders = np.bincount(o_cust, minlength=n)
    o_start = _group_starts(o_cust, n)
    srt = np.argsort(-n_orders[pair_cust], kind="stable")  # pairs of the busiest customers first
    pair_cust, pair_prod, interval = pair_cust[srt], pair_prod[srt], interval[srt]
    neg_count = -n_orders[pair_cust]
    first = o_start[pair_cust]
    last = o_sec[first] - interval * rng.uniform(0.0, 1.6, len(pair_cust))
    out_order, out_prod = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for k in range(int(-neg_count[0]) if len(neg_count) else 0):
        m = int(np.searchsorted(neg_count, -k, side="left"))  # pairs whose customer has > k orders
        oi = first[:m] + k
        t = o_sec[oi]
        due = (t - last[:m]) >= interval[:m] * rng.uniform(0.7, 1.05, m)
        due &= rng.random(m) >= _STAPLE_SKIP
        last[:m] = np.where(due, t, last[:m])
        out_order.append(oi[due])
        out_prod.append(pair_prod[:m][due])
    return np.concatenate(out_order), np.concatenate(out_prod)


def _repeated_durables(cust_of_line: np.ndarray, prod: np.ndarray, live: np.ndarray, durable: np.ndarray,
                       n_prod: int) -> np.ndarray:
    """Mask of live lines of durable products the same customer already has on an earlier live line
    (lines are in chronological order)."""
    idx = np.flatnonzero(live & durable[prod])
    _, first = np.unique(cust_of_line[idx] * n_prod + prod[idx], return_index=True)
    repeated = np.ones(len(idx), bool)
    repeated[first] = False
    out = np.zeros(len(prod), bool)
    out[idx[repeated]] = True
    return out


def _order_lines(cust: _Customers, catalog: _Catalog, o_cust: np.ndarray, o_sec: np.ndarray,
                 g_sec: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicated lines (order index, product, quantity); guest orders follow registered ones."""
    n_reg, n_prod = len(o_cust), len(catalog.price)
    consumable_cat = np.array([c.repurchase_days > 0 for c in catalog.cats])
    durable = ~consumable_cat[catalog.product_cat]
    st_order, st_prod = _staple_lines(cust, catalog, o_cust, o_sec, rng)
    n_st = np.bincount(st_order, minlength=n_reg)
    n_disc = rng.poisson(cust.basket[o_cust])
    n_disc = np.where(n_disc + n_st == 0, 1, n_disc)
    d_order = np.repeat(np.arange(n_reg), n_disc)
    d_prod = catalog.sample(rng, _sample_rows(rng, cust.taste_cum, o_cust[d_order]))
    comp = rng.random(len(d_prod)) < _COMPLEMENT_PROB
    order = np.concatenate([d_order, d_order[comp]])
    prod = np.concatenate([d_prod, catalog.complement[d_prod[comp]]])
    is_comp = np.concatenate([np.zeros(len(d_prod), bool), np.ones(int(comp.sum()), bool)])
    srt = _lex_order([order])  # chronological within each customer
    order, prod, is_comp = order[srt], prod[srt], is_comp[srt]
    # A customer rarely buys the same durable product twice: redraw such discovery lines (same
    # category), drop such complements; a few repeats survive.
    live = np.ones(len(prod), bool)
    for attempt in range(4):
        again = _repeated_durables(o_cust[order], prod, live, durable, n_prod)
        if attempt < 3:
            redraw = again & ~is_comp
            prod[redraw] = catalog.sample(rng, catalog.product_cat[prod[redraw]])
            live &= ~(again & is_comp)
        else:
            live &= ~(again & (rng.random(len(prod)) >= _DURABLE_REPEAT))
    empty = np.bincount(order[live], minlength=n_reg) + n_st == 0
    live |= empty[order] & ~is_comp
    order, prod = order[live], prod[live]
    # guest orders: 1 + Poisson(0.8) lines by the shop-wide category mix, and their complements
    n_g = 1 + rng.poisson(0.8, len(g_sec))
    g_order = n_reg + np.repeat(np.arange(len(g_sec)), n_g)
    g_prod = catalog.sample(rng, rng.choice(len(catalog.cats), len(g_order), p=catalog.cat_weight))
    g_comp = rng.random(len(g_prod)) < _COMPLEMENT_PROB
    order = np.concatenate([st_order, order, g_order, g_order[g_comp]])
    prod = np.concatenate([st_prod, prod, g_prod, catalog.complement[g_prod[g_comp]]])
    key, counts = np.unique(order * n_prod + prod, return_counts=True)
    order, prod = key // n_prod, key % n_prod
    qty = counts + rng.poisson(np.where(durable[prod], 0.12, 0.5))
    return order, prod, qty.astype(float)



def _line_prices(catalog: _Catalog, clock: _Clock, l_sec: np.ndarray, prod: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Unit prices of sale lines: the list price, discounted for part of the lines during the sales and
    now and then by a coupon."""
    promo = clock.is_promo(l_sec)
    u = rng.random(len(prod))
    discount = np.where(promo & (u < _PROMO_TAKE_UP), rng.choice([0.15, 0.2, 0.25, 0.3], len(u)),
                        np.where(u > 1 - _COUPON_PROB, 0.1, 0.0))
    return np.round(catalog.price[prod] * (1 - discount), 2)


def _returns(cust: _Customers, catalog: _Catalog, clock: _Clock, line_order: np.ndarray, l_cust: np.ndarray,
             l_sec: np.ndarray, prod: np.ndarray, qty: np.ndarray, n_orders: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returned sale lines as (line index, second, returned quantity): by the category's return rate and
    the customer's propensity, one parcel per order, partly for some multi-unit lines; guest lines are
    never returned and returns after the end of the period are not recorded."""
    rate = np.array([c.return_rate for c in catalog.cats])[catalog.product_cat[prod]]
    p_ret = np.where(l_cust >= 0, np.minimum(rate * cust.returner[np.maximum(l_cust, 0)], 0.8), 0.0)
    ret = np.flatnonzero(rng.random(len(line_order)) < p_ret)
    delay = np.round((1.5 + rng.gamma(*_RETURN_DELAY, n_orders)) * _DAY).astype(np.int64)  # one parcel per order
    r_sec = l_sec[ret] + delay[line_order[ret]]
    r_qty = qty[ret].copy()
    partial = (r_qty > 1) & (rng.random(len(ret)) < 0.3)
    r_qty[partial] = rng.integers(1, r_qty[partial].astype(np.int64))
    inside = r_sec <= clock.last_sec
    return ret[inside], r_sec[inside], r_qty[inside]


@dataclass
class _BlockOrders:
    """The orders of one block: the order of every block-local order index and its lines."""

    o_cust: np.ndarray  # block-local customer of each registered order (sorted), guests follow
    o_sec: np.ndarray  # time of each registered order
    g_sec: np.ndarray  # time of each guest order of the block
    line_order: np.ndarray  # block-local order index of each sale line (registered orders, then guests)
    line_prod: np.ndarray
    rows: dict[str, np.ndarray]  # order lines and returns, columns of _ORDER_COLUMNS


def _block_orders(inp: _BlockInput, cust: _Customers, catalog: _Catalog, clock: _Clock,
                  rng: np.random.Generator) -> _BlockOrders:
    """Baskets, prices and returns of the block's orders (its customers' and its share of the guest
    orders), with global customer indices and order ranks; the lines of an order by product."""
    o_cust, o_sec, g_sec = inp.o_cust, inp.o_sec, inp.g_sec
    line_order, line_prod, qty = _order_lines(cust, catalog, o_cust, o_sec, g_sec, rng)
    order_cust = np.concatenate([o_cust, np.full(len(g_sec), -1, dtype=np.int64)])
    l_sec = np.concatenate([o_sec, g_sec])[line_order]
    l_cust = order_cust[line_order]
    price = _line_prices(catalog, clock, l_sec, line_prod, rng)
    ret, r_sec, r_qty = _returns(cust, catalog, clock, line_order, l_cust, l_sec, line_prod, qty,
                                 len(order_cust), rng)
    rows = {
        "rank": inp.order_rank[np.concatenate([line_order, line_order[ret]])],
        "customer": np.where(l_cust >= 0, l_cust + inp.c0, -1)[np.concatenate([np.arange(len(l_cust)), ret])],
        "product": np.concatenate([line_prod, line_prod[ret]]),
        "quantity": np.concatenate([qty, -r_qty]),
        "unit_price": np.concatenate([price, price[ret]]),
        "sec": np.concatenate([l_sec, r_sec]),
        "is_return": np.concatenate([np.zeros(len(qty), dtype=bool), np.ones(len(ret), dtype=bool)]),
    }
    return _BlockOrders(o_cust, o_sec, g_sec, line_order, line_prod, rows)


# --------------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------------


def _session_events(anchor: np.ndarray, converting: np.ndarray, p_sess: np.ndarray, p_prod: np.ndarray,
                    p_cart: np.ndarray, s_sess: np.ndarray, clock: _Clock, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lay out the events of every session in time.

    ``p_*``: product rows (session, product, carted); ``s_sess``: search rows. A converting session
    ends with its purchase event at ``anchor``; other sessions start at ``anchor``. Inside a session the
    events come in random order, each add_to_cart right after its view, the purchase last.
    Returns (session, event kind 0 view / 1 add_to_cart / 2 purchase / 3 search, product or -1, second),
    sorted by session and time.
    """
    n_p, n_s = len(p_sess), len(s_sess)
    conv_idx = np.flatnonzero(converting)
    cart = np.flatnonzero(p_cart)
    sess = np.concatenate([p_sess, p_sess[cart], s_sess, conv_idx])
    kind = np.concatenate([np.zeros(n_p, np.int8), np.ones(len(cart), np.int8),
                           np.full(n_s, 3, np.int8), np.full(len(conv_idx), 2, np.int8)])
    prod = np.concatenate([p_prod, p_prod[cart], np.full(n_s + len(conv_idx), -1, np.int64)])
    # random keys (as many bits as fit beside the session and row numbers in one int64), doubled so
    # that a cart is its view's key + 1; the purchase gets the largest key
    bits = max(8, min(30, 61 - len(anchor).bit_length() - len(sess).bit_length()))
    p_key = rng.integers(0, 1 << bits, n_p) << 1
    key = np.concatenate([p_key, p_key[cart] + 1, rng.integers(0, 1 << bits, n_s) << 1,
                          np.full(len(conv_idx), 1 << (bits + 1))])
    srt = _lex_order([sess, key])
    sess, kind, prod = sess[srt], kind[srt], prod[srt]
    lo, mean, hi = _EVENT_GAP
    gaps = np.minimum(lo + np.round(rng.exponential(mean, len(sess))), hi).astype(np.int64)
    n_sess = len(anchor)
    starts = _group_starts(sess, n_sess)
    gaps[starts[:-1][starts[:-1] < len(sess)]] = 0  # first event of each session
    cs = np.cumsum(gaps)
    offset = cs - cs[starts[:-1][sess]]
    last_offset = offset[np.maximum(starts[1:] - 1, 0)]
    sec = anchor[sess] + offset - np.where(converting, last_offset, 0)[sess]
    return sess, kind, prod, np.clip(sec, clock.first_sec, clock.last_sec)


@dataclass
class _BlockSessions:
    """The browsing events of one block, by session (numbered in creation order) and time."""

    session: np.ndarray  # block-local session of each event
    kind: np.ndarray  # 0 view, 1 add_to_cart, 2 purchase, 3 search
    product: np.ndarray  # product or -1
    sec: np.ndarray
    customer: np.ndarray  # block-local customer of each session, -1 for guests
    start: np.ndarray  # first event second of each session


def _sessions(cust: _Customers, catalog: _Catalog, clock: _Clock, orders: _BlockOrders, drop_sec: np.ndarray,
              rng: np.random.Generator) -> _BlockSessions:
    """All browsing events of a block's customers and guests: one converting session per order (in
    order index), then non-converting customer sessions, then guest sessions."""
    n = len(cust.first_sec)
    n_cat = len(catalog.cats)
    o_cust, o_sec, g_sec = orders.o_cust, orders.o_sec, orders.g_sec
    n_orders = len(o_cust) + len(g_sec)
    order_cust = np.concatenate([o_cust, np.full(len(g_sec), -1, np.int64)])

    # Non-converting customer sessions, from acquisition to the end (or a fading tail after dropping out).
    a = clock.to_shop_time(np.maximum(cust.first_sec, clock.first_sec))
    tail = np.round(rng.exponential(_BROWSE_TAIL_DAYS * _DAY, n)).astype(np.int64)
    end_sec = np.where(drop_sec >= 0, np.minimum(drop_sec + tail, clock.last_sec), clock.last_sec)
    b = clock.to_shop_time(end_sec)
    n_browse = rng.poisson((cust.rate * cust.browse + _BROWSE_BASE_RATE) * np.maximum(b - a, 0.0))
    bc = np.repeat(np.arange(n), n_browse)
    b_sec = clock.to_seconds(a[bc] + rng.random(len(bc)) * (b - a)[bc])
    # Guest sessions.
    n_guest = int(round(_GUEST_SESSION_SHARE * (len(o_cust) + len(bc))))
    gs_sec = clock.draw_seconds(rng, n_guest)

    n_nc = len(bc) + n_guest
    nc_cust = np.concatenate([bc, np.full(n_guest, -1, np.int64)])
    anchor = np.concatenate([o_sec, g_sec, b_sec, gs_sec]).astype(np.int64)
    s_cust = np.concatenate([order_cust, nc_cust])
    converting = np.arange(n_orders + n_nc) < n_orders

    # Product rows: purchased lines (carted), extra views in converting sessions, views in browsing ones.
    n_extra = np.concatenate([rng.poisson(1.0, n_orders), 1 + rng.poisson(2.0, n_nc)])
    x_sess = np.repeat(np.arange(n_orders + n_nc), n_extra)
    x_cust = s_cust[x_sess]
    x_cat = np.empty(len(x_sess), dtype=np.int64)
    reg = x_cust >= 0
    x_cat[reg] = _sample_rows(rng, cust.taste_cum, x_cust[reg])
    x_cat[~reg] = rng.choice(n_cat, int((~reg).sum()), p=catalog.cat_weight)
    x_prod = catalog.sample(rng, x_cat)
    x_cart = rng.random(len(x_sess)) < np.where(converting[x_sess], 0.05, 0.12)  # abandoned carts
    p_sess = np.concatenate([orders.line_order, x_sess])
    p_prod = np.concatenate([orders.line_prod, x_prod])
    p_cart = np.concatenate([np.ones(len(orders.line_order), bool), x_cart])
    n_search = rng.poisson(np.where(converting, 0.6, 0.8))
    s_sess = np.repeat(np.arange(len(anchor)), n_search)

    sess, kind, prod, sec = _session_events(anchor, converting, p_sess, p_prod, p_cart, s_sess, clock, rng)
    start = sec[_group_starts(sess, len(anchor))[:-1]]  # every session has at least one event
    return _BlockSessions(sess, kind, prod, sec, s_cust, start)


def _first_seen(sessions: _BlockSessions, orders: _BlockOrders, n: int) -> np.ndarray:
    """Each block customer's first event: the start of their first session (the session of the first
    order starts no later than that order)."""
    first = np.full(n, np.iinfo(np.int64).max)
    reg = sessions.customer >= 0
    np.minimum.at(first, sessions.customer[reg], sessions.start[reg])
    return np.minimum(first, orders.o_sec[_group_starts(orders.o_cust, n)[:-1]])


# --------------------------------------------------------------------------------------------------
# Blocks: generated (in worker processes if allowed), spilled to disk, read back in time windows
# --------------------------------------------------------------------------------------------------

_ORDER_COLUMNS = {"rank": np.int64, "customer": np.int32, "product": np.int32, "quantity": np.float64,
                  "unit_price": np.float64, "sec": np.int64, "is_return": np.bool_}
_SESSION_COLUMNS = {"session": np.int32, "customer": np.int32, "kind": np.int8, "product": np.int32,
                    "sec": np.int64}
_TABLE_COLUMNS = {"orders": _ORDER_COLUMNS, "sessions": _SESSION_COLUMNS}


def _column_path(folder: Path, table: str, block: int, column: str) -> Path:
    """The raw file of one column of one block's rows of ``table``."""
    return folder / f"{table}.{block:06d}.{column}.bin"


def _spill_block(folder: Path, table: str, block: int, rows: dict[str, np.ndarray], clock: _Clock) -> np.ndarray:
    """Write one block's rows of ``table`` grouped by day (a day's rows keep their order), one raw file
    per column; returns the row offset of every day edge (length: days + 1)."""
    n_days = _n_days(clock)
    day = (rows["sec"] - clock.first_sec) // _DAY
    order = _lex_order([day])
    for column, dtype in _TABLE_COLUMNS[table].items():
        rows[column][order].astype(dtype, copy=False).tofile(_column_path(folder, table, block, column))
    return np.searchsorted(day[order], np.arange(n_days + 1))


def _n_days(clock: _Clock) -> int:
    """Days in the period (the last one may be partial)."""
    return max(1, math.ceil((clock.last_sec + 1 - clock.first_sec) / _DAY))


class _SpilledTable:
    """The spilled rows of one table, every block grouped by day: reads a range of days from all blocks
    at once (a merge sort in time windows)."""

    def __init__(self, folder: Path, table: str, day_offsets: list[np.ndarray]) -> None:
        self.folder, self.table, self.day_offsets = folder, table, day_offsets
        self.rows = int(sum(int(o[-1]) for o in day_offsets))

    def rows_per_day(self) -> np.ndarray:
        """Rows of each day, all blocks together."""
        return np.sum([np.diff(o) for o in self.day_offsets], axis=0)

    def windows(self, target_rows: int) -> list[tuple[int, int]]:
        """Consecutive day ranges of about ``target_rows`` rows each (whole days; at least one range)."""
        cum = np.cumsum(self.rows_per_day())
        n_days = len(cum)
        cuts = np.searchsorted(cum, np.arange(target_rows, int(cum[-1]), target_rows), side="left") + 1
        bounds = np.unique(np.concatenate([[0], np.minimum(cuts, n_days), [n_days]]))
        return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))

    def read(self, d0: int, d1: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The rows of days ``[d0, d1)`` of every block, block after block, and the block of each row."""
        counts = np.array([int(o[d1] - o[d0]) for o in self.day_offsets], dtype=np.int64)
        out = {}
        for column, dtype in _TABLE_COLUMNS[self.table].items():
            item = np.dtype(dtype).itemsize
            parts = []
            for block, offsets in enumerate(self.day_offsets):
                with _column_path(self.folder, self.table, block, column).open("rb") as fh:
                    fh.seek(int(offsets[d0]) * item)
                    parts.append(np.fromfile(fh, dtype=dtype, count=int(counts[block])))
            out[column] = np.concatenate(parts)
        return out, np.repeat(np.arange(len(self.day_offsets)), counts)


@dataclass
class _BlockOutput:
    """What a block leaves besides its spilled rows."""

    order_days: np.ndarray  # row offset of every day edge in the block's spilled order lines
    session_days: np.ndarray  # the same for its session events
    first_seen: np.ndarray  # per customer, seconds
    country: np.ndarray  # per customer, index into _COUNTRIES
    session_start: np.ndarray  # per session (block-local creation order), seconds
    message: str  # progress line


def _run_block(inp: _BlockInput, catalog: _Catalog, clock: _Clock, folder: Path) -> _BlockOutput:
    """Generate one block from its own random streams and spill its rows to ``folder``."""
    rng_customers, rng_orders, rng_sessions = (np.random.default_rng(s) for s in inp.seed.spawn(3))
    n = len(inp.cand.first_sec)
    cust = _block_customers(inp.cand, catalog, rng_customers)
    orders = _block_orders(inp, cust, catalog, clock, rng_orders)
    sessions = _sessions(cust, catalog, clock, orders, inp.drop_sec, rng_sessions)
    order_days = _spill_block(folder, "orders", inp.index, orders.rows, clock)
    session_customer = np.where(sessions.customer >= 0, sessions.customer + inp.c0, -1)
    session_days = _spill_block(folder, "sessions", inp.index, {
        "session": sessions.session, "customer": session_customer[sessions.session], "kind": sessions.kind,
        "product": sessions.product, "sec": sessions.sec}, clock)
    message = (f"customers {inp.c0 + 1:,}-{inp.c0 + n:,}: {len(orders.rows['sec']):,} order lines "
               f"({int(orders.rows['is_return'].sum()):,} returns), {len(sessions.sec):,} session events")
    return _BlockOutput(order_days, session_days, _first_seen(sessions, orders, n), cust.country,
                        sessions.start, message)


def _bounded_map(pool: Executor | None, fn: Callable[[_T], _R], items: Iterable[_T], ahead: int) -> Iterator[_R]:
    """``map(fn, items)`` in order, on ``pool`` (in this thread if None) with at most ``ahead`` items
    submitted and not yet consumed, so that memory stays bounded."""
    if pool is None:
        yield from map(fn, items)
        return
    pending: collections.deque[Future[_R]] = collections.deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _block_pool(workers: int, n_blocks: int) -> ProcessPoolExecutor | None:
    """Worker processes for the blocks, when they pay off: several workers allowed, at least two blocks
    per worker (starting a worker costs its imports), and this process may have children."""
    if workers < 2 or n_blocks < 2 * workers or multiprocessing.current_process().daemon:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


@dataclass
class _Generated:
    """What the blocks produced: the spilled orders and sessions, and the per-customer and per-session
    values the merge needs."""

    orders: _SpilledTable
    sessions: _SpilledTable
    first_seen: np.ndarray  # per customer, seconds
    country: np.ndarray  # per customer, index into _COUNTRIES
    session_rank: np.ndarray  # per session (blocks in order, each in creation order): rank by first event
    session_offset: np.ndarray  # per block: its first session in ``session_rank``


def _session_ranks(start: np.ndarray) -> np.ndarray:
    """Every session's rank by its first event (ties: creation order, i.e. block by block)."""
    dtype = np.int32 if len(start) < 2 ** 31 else np.int64
    rank = np.empty(len(start), dtype=dtype)
    rank[_lex_order([start])] = np.arange(len(start), dtype=dtype)
    return rank


def _generate_blocks(plan: _Plan, catalog: _Catalog, clock: _Clock, seeds: np.random.SeedSequence,
                     folder: Path, workers: int, say: Callable[[str], None]) -> _Generated:
    """Generate every block (in up to ``workers`` processes; the result does not depend on it) and spill
    its rows to ``folder``."""
    n_blocks = len(plan.blocks)
    inputs = (plan.block_input(b, seq) for b, seq in enumerate(seeds.spawn(n_blocks)))
    run = functools.partial(_run_block, catalog=catalog, clock=clock, folder=folder)
    outputs: list[_BlockOutput] = []
    pool = _block_pool(workers, n_blocks)
    try:
        for out in _bounded_map(pool, run, inputs, 2 * workers):
            outputs.append(out)
            say(f"block {len(outputs)}/{n_blocks}: {out.message}")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    n_sessions = np.array([len(o.session_start) for o in outputs])
    say(f"sessions: numbering {int(n_sessions.sum()):,} sessions by their first event")
    return _Generated(
        _SpilledTable(folder, "orders", [o.order_days for o in outputs]),
        _SpilledTable(folder, "sessions", [o.session_days for o in outputs]),
        np.concatenate([o.first_seen for o in outputs]), np.concatenate([o.country for o in outputs]),
        _session_ranks(np.concatenate([o.session_start for o in outputs])),
        np.concatenate([[0], np.cumsum(n_sessions)[:-1]]).astype(np.int64))


# --------------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------------

TableSink = Callable[[str, pa.Table], None]
"""Receives the shop chunk by chunk: ``sink(table_name, arrow_table)``."""


@functools.cache
def _schema(name: str) -> pa.Schema:
    """The Arrow schema pandas writes for the conformed canonical table ``name`` (string ids, float64,
    bool, ``timestamp[us, UTC]``, pandas metadata), so that the streamed tables read back exactly like
    the ones :func:`features.storage.write_tables` writes."""
    table = TABLES[name]
    empty = conform(pd.DataFrame({c: pd.Series([], dtype=object) for c in table.column_names}), table)
    return pa.Schema.from_pandas(empty, preserve_index=False)


@dataclass
class _Labels:
    """Ids and names that are looked up by index, formatted once."""

    customers: pa.StringArray  # "C000001", ... by acquisition
    products: pa.StringArray  # "P00001", ...
    countries: pa.StringArray
    event_types: pa.StringArray
    order_base: int  # an order's id is order_base + its chronological rank
    session_width: int  # digits of a session id


def _make_labels(n_customers: int, n_products: int, n_orders: int, n_sessions: int) -> _Labels:
    """The labels of a shop of this size."""
    return _Labels(
        customers=_format_ids("C", np.arange(1, n_customers + 1), 6),
        products=_format_ids("P", np.arange(1, n_products + 1), 5),
        countries=pa.array([c for c, _ in _COUNTRIES], pa.string()),
        event_types=pa.array(list(EVENT_TYPES), pa.string()),
        order_base=10 ** max(6, len(str(n_orders))),
        session_width=max(8, len(str(n_sessions))),
    )


def _order_ids(numbers: np.ndarray, is_return: np.ndarray) -> pa.Array:
    """Order ids: the number on a sale line, ``"R"`` + the number on a return line."""
    index = np.empty(len(numbers), dtype=np.int64)
    parts, offset = [], 0
    for prefix, mask in (("", ~is_return), ("R", is_return)):
        labels, idx = _id_labels(prefix, numbers[mask], 1)
        index[mask] = idx + offset
        parts.append(labels)
        offset += len(labels)
    return pa.concat_arrays(parts).take(pa.array(index))


def _orders_table(rows: dict[str, np.ndarray], labels: _Labels, clock: _Clock) -> pa.Table:
    """Order lines (columns of ``_ORDER_COLUMNS``) as the ``orders`` table: by time, sales before
    returns, then order and product (a block spills the lines of an order by product, and the sort
    keeps that order)."""
    srt = _lex_order([rows["sec"], rows["is_return"].view(np.int8), rows["rank"]])
    r = {c: v[srt] for c, v in rows.items()}
    return pa.Table.from_arrays([
        _order_ids(r["rank"] + labels.order_base, r["is_return"]),
        _lookup(labels.customers, r["customer"]),
        _lookup(labels.products, r["product"]),
        pa.array(r["quantity"]),
        pa.array(r["unit_price"]),
        pa.array(np.round(r["quantity"] * r["unit_price"], 2)),
        clock.timestamps(r["sec"]),
        pa.array(r["is_return"]),
    ], schema=_schema("orders"))


def _sessions_table(rows: dict[str, np.ndarray], block: np.ndarray, generated: _Generated, labels: _Labels,
                    clock: _Clock) -> pa.Table:
    """Session events (columns of ``_SESSION_COLUMNS``, from blocks ``block``) as the ``sessions``
    table: by time, then session id; the events of a session in the same second keep their order."""
    rank = generated.session_rank[generated.session_offset[block] + rows["session"]].astype(np.int64)
    srt = _lex_order([rows["sec"], rank])
    return pa.Table.from_arrays([
        _id_column("S", rank[srt] + 1, labels.session_width),
        _lookup(labels.customers, rows["customer"][srt]),
        clock.timestamps(rows["sec"][srt]),
        labels.event_types.take(pa.array(rows["kind"][srt])),
        _lookup(labels.products, rows["product"][srt]),
    ], schema=_schema("sessions"))


def _customers_table(generated: _Generated, labels: _Labels, clock: _Clock) -> pa.Table:
    """The ``customers`` table: id, first event, country."""
    return pa.Table.from_arrays([
        labels.customers,
        clock.timestamps(generated.first_seen),
        labels.countries.take(pa.array(generated.country)),
    ], schema=_schema("customers"))


def _products_table(catalog: _Catalog, labels: _Labels) -> pa.Table:
    """The ``products`` table: id, name, category, list price."""
    categories = pa.array([c.name for c in catalog.cats], pa.string())
    return pa.Table.from_arrays([
        labels.products,
        pa.array(catalog.names, pa.string()),
        categories.take(pa.array(catalog.product_cat)),
        pa.array(catalog.price),
    ], schema=_schema("products"))


def _emit_windows(sink: TableSink, name: str, spilled: _SpilledTable,
                  build: Callable[[dict[str, np.ndarray], np.ndarray], pa.Table], workers: int,
                  say: Callable[[str], None]) -> int:
    """Read ``spilled`` back one time window at a time, build each window's table (in up to ``workers``
    threads, while this one hands the finished ones to ``sink`` in order)."""
    windows = spilled.windows(_ROW_GROUP_ROWS)
    say(f"{name}: writing {spilled.rows:,} rows in time order ({len(windows)} row group(s))")
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and len(windows) > 1 else None
    try:
        for table in _bounded_map(pool, lambda window: build(*spilled.read(*window)), windows, workers):
            sink(name, table)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return spilled.rows


def _hand_over(sink: TableSink, generated: _Generated, catalog: _Catalog, clock: _Clock, n_orders: int,
               workers: int, say: Callable[[str], None]) -> tuple[int, int]:
    """Hand the tables to ``sink``: products, orders and sessions window by window, customers. Returns
    the numbers of order lines and session events."""
    labels = _make_labels(len(generated.first_seen), len(catalog.price), n_orders, len(generated.session_rank))

    def orders(rows: dict[str, np.ndarray], _block: np.ndarray) -> pa.Table:
        return _orders_table(rows, labels, clock)

    def sessions(rows: dict[str, np.ndarray], block: np.ndarray) -> pa.Table:
        return _sessions_table(rows, block, generated, labels, clock)

    sink("products", _products_table(catalog, labels))
    n_lines = _emit_windows(sink, "orders", generated.orders, orders, workers, say)
    n_events = _emit_windows(sink, "sessions", generated.sessions, sessions, workers, say)
    sink("customers", _customers_table(generated, labels, clock))
    return n_lines, n_events


# --------------------------------------------------------------------------------------------------
# The shop
# --------------------------------------------------------------------------------------------------


def _utc(value: str) -> pd.Timestamp:
    """A timestamp in UTC (naive means UTC)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _period(customers: int, products: int, start: str, end: str, block_orders: int
            ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Check the arguments; the period's bounds in UTC."""
    if customers <= 0 or products <= 0:
        raise ValueError(f"customers ({customers}) and products ({products}) must be positive")
    if block_orders <= 0:
        raise ValueError(f"block_orders ({block_orders}) must be positive")
    t0, t1 = _utc(start), _utc(end)
    if t1 - t0 < pd.Timedelta(days=1):
        raise ValueError(f"the period [{start}, {end}) must span at least one day")
    return t0, t1


def generate_shop(sink: TableSink, customers: int = 20_000, products: int = 1_000, seed: int = 42,
                  start: str = "2022-01-01", end: str = "2024-01-01",
                  progress: Callable[[str], None] | None = None, *, scratch_dir: Path | None = None,
                  workers: int = 1, block_orders: int = _BLOCK_ORDERS) -> dict[str, int]:
    """Generate the synthetic shop and hand it to ``sink(name, table)`` in Arrow tables: ``products``,
    then ``orders`` and ``sessions`` in time order (one table per time window of about
    ``_ROW_GROUP_ROWS`` rows), then ``customers``. Returns the row count of every table.

    Deterministic for given arguments, whatever ``workers`` (processes for the blocks and threads for
    the merge; 1 = this thread only); ``block_orders`` is part of the shop's definition (keep the
    default). ``start``/``end`` are parsed by pandas (naive means UTC); all timestamps fall in
    ``[start, end)``. The blocks are spilled to a temporary folder in ``scratch_dir`` (default: the
    system's) and removed at the end: 41 bytes per order line and 21 per session event, about 4.5 GB
    for a million customers. ``progress`` receives a short message per step and per block.
    """
    t0, t1 = _period(customers, products, start, end, block_orders)
    say = progress or (lambda _msg: None)
    workers = max(1, int(workers))
    catalog_seq, base_seq, block_seq = np.random.SeedSequence([int(seed < 0), abs(int(seed))]).spawn(3)
    clock = _Clock(t0, t1)

    say(f"catalog: {products:,} products")
    catalog = _make_catalog(products, np.random.default_rng(catalog_seq))
    say(f"customers: {customers:,} and their purchase process")
    plan = _make_plan(customers, clock, block_orders, np.random.default_rng(base_seq))
    say(f"orders: {len(plan.order_rank):,} orders; baskets, returns and sessions in {len(plan.blocks)} "
        f"block(s) of about {block_orders:,} orders")
    with tempfile.TemporaryDirectory(prefix=".synthetic-", dir=scratch_dir) as folder:
        generated = _generate_blocks(plan, catalog, clock, block_seq, Path(folder), workers, say)
        n_orders = len(plan.order_rank)
        del plan  # the skeleton is not needed any more
        n_lines, n_events = _hand_over(sink, generated, catalog, clock, n_orders, workers, say)
    say(f"done: {n_lines:,} order lines, {n_events:,} session events")
    return {"orders": n_lines, "customers": customers, "products": products, "sessions": n_events}


def synthesize_shop(customers: int = 20_000, products: int = 1_000, seed: int = 42,
                    start: str = "2022-01-01", end: str = "2024-01-01",
                    progress: Callable[[str], None] | None = None, *, workers: int = 1,
                    block_orders: int = _BLOCK_ORDERS) -> dict[str, pd.DataFrame]:
    """Generate the synthetic shop in memory: ``{"orders", "customers", "products", "sessions"}``
    canonical tables, the same rows :func:`generate_shop` streams (for small shops: tests, notebooks;
    ``ecrm data synthesize`` streams them to parquet instead).

    Deterministic for given arguments. ``start``/``end`` are parsed by pandas (naive means UTC); all
    timestamps fall in ``[start, end)``. ``progress`` receives a short message per step.
    """
    chunks: dict[str, list[pa.Table]] = {name: [] for name in ("orders", "customers", "products", "sessions")}
    generate_shop(lambda name, table: chunks[name].append(table), customers, products, seed, start, end,
                  progress, workers=workers, block_orders=block_orders)
    return {name: conform(pa.concat_tables(parts).to_pandas(), TABLES[name], source="synthetic shop")
            for name, parts in chunks.items()}
