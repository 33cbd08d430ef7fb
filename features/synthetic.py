"""The synthetic shop: ecrm's embedded default data set.

:func:`synthesize_shop` invents an online shop and returns its four canonical tables (``orders``,
``customers``, ``products``, ``sessions``; see :mod:`features.schema`). The same arguments always give
the same tables. The generative story, step by step:

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
order lines and three million session events, in about five seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from features.schema import TABLES, conform

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
        return np.interp(np.asarray(sec, dtype=float), self.edges, self.cum)

    def draw_seconds(self, rng: np.random.Generator, n: int, *, warmup: bool = False) -> np.ndarray:
        """``n`` sorted times following the growth-weighted intensity, over the period (and warm-up)."""
        lo = 0.0 if warmup else float(np.interp(self.first_sec, self.edges, self.cum_growth))
        sec = self.to_seconds(lo + rng.random(n) * (self.cum_growth[-1] - lo), growth=True)
        return np.sort(sec if warmup else np.maximum(sec, self.first_sec))

    def is_promo(self, sec: np.ndarray) -> np.ndarray:
        return self.promo[np.minimum(sec // _HOUR, len(self.promo) - 1)]

    def timestamps(self, sec: np.ndarray) -> pd.Series:
        """Whole seconds since the origin as a ``datetime64[us, UTC]`` series."""
        us = (self.origin_us + np.asarray(sec, dtype=np.int64) * _US).astype("datetime64[us]")
        return pd.Series(us).dt.tz_localize("UTC")


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _gamma(rng: np.random.Generator, shape: float, mean: float, size: int) -> np.ndarray:
    return rng.gamma(shape, mean / shape, size)


def _group_starts(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """Start offset of each group 0..n_groups-1 in an array sorted by group (length n_groups + 1)."""
    return np.searchsorted(sorted_keys, np.arange(n_groups + 1))


def _rank_in_group(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """0-based position of each row within its group, for rows sorted by group."""
    starts = _group_starts(sorted_keys, n_groups)
    return np.arange(len(sorted_keys)) - starts[sorted_keys]


def _sample_rows(rng: np.random.Generator, cum_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one column per entry of ``rows`` from the row-wise cumulative distributions ``cum_rows``."""
    out = np.empty(len(rows), dtype=np.int64)
    step = 1 << 18  # keep the comparison matrix small
    for i in range(0, len(rows), step):
        r = rows[i:i + step]
        u = rng.random(len(r))
        out[i:i + step] = (cum_rows[r] < u[:, None]).sum(axis=1)
    return np.minimum(out, cum_rows.shape[1] - 1)


def _ids(prefix: str, n: int, width: int) -> list[str]:
    """``prefix`` + zero-padded 1..n."""
    width = max(width, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _coded(codes: np.ndarray, labels: list[str] | np.ndarray) -> pd.Categorical:
    """A string column as codes into distinct labels (code -1 = null); cheap for millions of rows."""
    return pd.Categorical.from_codes(codes, categories=labels)


def _psych_price(p: np.ndarray) -> np.ndarray:
    """Round to shop-like prices: 4.49, 12.99, 0.89."""
    p = np.maximum(p, 0.3)
    return np.round(np.where(p < 10, np.ceil(p * 10) / 10, np.ceil(p)) - 0.01, 2)


# --------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------


@dataclass
class _Catalog:
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
# Customers and their purchase process
# --------------------------------------------------------------------------------------------------


@dataclass
class _Customers:
    first_sec: np.ndarray  # acquisition = first order, seconds since the clock's origin (sorted)
    rate: np.ndarray  # purchases per shop-day while alive
    dropout: np.ndarray  # drop-out probability after each purchase
    basket: np.ndarray  # mean discovery lines per order
    returner: np.ndarray  # return propensity multiplier (mean 1)
    browse: np.ndarray  # non-converting sessions per expected order
    taste_cum: np.ndarray  # (N, C) cumulative category taste
    taste: np.ndarray  # (N, C)
    country: np.ndarray  # object array

    def take(self, idx: np.ndarray) -> _Customers:
        return _Customers(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _make_customers(n: int, catalog: _Catalog, clock: _Clock, rng: np.random.Generator) -> _Customers:
    first_sec = clock.draw_seconds(rng, n, warmup=True)
    heavy = rng.random(n) < _HEAVY_SHARE
    rate = np.where(heavy, _gamma(rng, *_RATE_HEAVY, n), _gamma(rng, *_RATE_REGULAR, n))
    rate = np.clip(rate, 1e-4, _MAX_RATE)
    dropout = np.where(heavy, rng.beta(*_DROPOUT_HEAVY, n), rng.beta(*_DROPOUT_REGULAR, n))
    returner = rng.gamma(1.0, 1.0, n)
    dropout = np.clip(dropout * (0.75 + 0.25 * returner), 1e-4, 0.95)
    basket = _gamma(rng, *_BASKET, n)
    browse = rng.gamma(*_BROWSE_PER_ORDER, n)
    n_cat = len(catalog.cats)
    dirichlet = rng.gamma(_TASTE_CONCENTRATION * catalog.cat_weight, 1.0, (n, n_cat)) + 1e-12
    dirichlet /= dirichlet.sum(axis=1, keepdims=True)
    taste = _TASTE_GLOBAL_SHARE * catalog.cat_weight + (1 - _TASTE_GLOBAL_SHARE) * dirichlet
    taste_cum = np.cumsum(taste, axis=1)
    taste_cum /= taste_cum[:, -1:]
    names = np.array([c for c, _ in _COUNTRIES], dtype=object)
    probs = np.array([w for _, w in _COUNTRIES])
    country = names[rng.choice(len(names), n, p=probs / probs.sum())]
    return _Customers(first_sec, rate, dropout, basket, returner, browse, taste_cum, taste, country)


def _customer_base(n: int, catalog: _Catalog, clock: _Clock, rng: np.random.Generator
                   ) -> tuple[_Customers, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` customers with an order in the period, drawn from everyone acquired since the origin, with
    their orders in the period (see :func:`_purchase_times`). Customers are numbered by acquisition."""
    n_cand = 2 * n
    while True:
        cand = _make_customers(n_cand, catalog, clock, rng)
        o_cust, o_sec, drop_sec = _purchase_times(cand, clock, rng)
        in_period = o_sec >= clock.first_sec
        eligible = np.flatnonzero(np.bincount(o_cust[in_period], minlength=n_cand) > 0)
        if len(eligible) >= n:
            break
        n_cand = int(n_cand * 1.2 * n / max(len(eligible), 1)) + 1
    chosen = np.sort(rng.choice(eligible, n, replace=False))
    new_index = np.full(n_cand, -1, dtype=np.int64)
    new_index[chosen] = np.arange(n)
    keep = in_period & (new_index[o_cust] >= 0)
    return cand.take(chosen), new_index[o_cust[keep]], o_sec[keep], drop_sec[chosen]


def _purchase_times(cust: _Customers, clock: _Clock, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order times of registered customers: (customer index, seconds) sorted by customer and time,
    plus each customer's drop-out second (-1 while still alive at the end)."""
    n = len(cust.first_sec)
    a = clock.to_shop_time(cust.first_sec)
    window = np.maximum(clock.cum[-1] - a, 0.0)
    n_poisson = rng.poisson(cust.rate * window)  # purchases if they stayed alive
    allowed = rng.geometric(cust.dropout) - 1  # repeat purchases before dropping out
    dropped = allowed <= n_poisson
    # The first n_repeat of n_poisson uniform times in the remaining window (order statistics).
    idx = np.repeat(np.arange(n), n_poisson)
    u = a[idx] + rng.random(len(idx)) * window[idx]
    srt = np.lexsort((u, idx))
    idx, u = idx[srt], u[srt]
    keep = _rank_in_group(idx, n) < allowed[idx]
    o_cust = np.concatenate([np.arange(n), idx[keep]])
    o_sec = np.concatenate([cust.first_sec, clock.to_seconds(u[keep])])
    srt = np.lexsort((o_sec, o_cust))
    o_cust, o_sec = o_cust[srt], o_sec[srt]
    # At least _MIN_ORDER_GAP between a customer's orders: t'_k = k*gap + cummax_j<=k(t_j - j*gap).
    rank = _rank_in_group(o_cust, n)
    big = np.int64(clock.last_sec + (int(rank.max(initial=0)) + 1) * _MIN_ORDER_GAP + 1)
    shifted = o_sec - rank * _MIN_ORDER_GAP + o_cust.astype(np.int64) * big
    o_sec = np.maximum.accumulate(shifted) - o_cust.astype(np.int64) * big + rank * _MIN_ORDER_GAP
    inside = o_sec <= clock.last_sec
    o_cust, o_sec = o_cust[inside], o_sec[inside]
    last = o_sec[_group_starts(o_cust, n)[1:] - 1]  # every customer has at least the first order
    drop_sec = np.where(dropped, last, -1)
    return o_cust, o_sec, drop_sec


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
    srt = np.argsort(order, kind="stable")  # chronological within each customer
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


# --------------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------------


def _session_events(anchor: np.ndarray, converting: np.ndarray, p_sess: np.ndarray, p_prod: np.ndarray,
                    p_cart: np.ndarray, s_sess: np.ndarray, clock: _Clock, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lay out the events of every session in time.

    ``p_*``: product rows (session, product, carted); ``s_sess``: search rows. A converting session
    ends with its purchase event at ``anchor``; other sessions start at ``anchor``.
    Returns (session, event kind 0 view / 1 add_to_cart / 2 purchase / 3 search, product or -1, second).
    """
    n_p, n_s = len(p_sess), len(s_sess)
    conv_idx = np.flatnonzero(converting)
    p_key = rng.random(n_p)
    cart = np.flatnonzero(p_cart)
    sess = np.concatenate([p_sess, p_sess[cart], s_sess, conv_idx])
    kind = np.concatenate([np.zeros(n_p, np.int8), np.ones(len(cart), np.int8),
                           np.full(n_s, 3, np.int8), np.full(len(conv_idx), 2, np.int8)])
    prod = np.concatenate([p_prod, p_prod[cart], np.full(n_s + len(conv_idx), -1, np.int64)])
    key = np.concatenate([p_key, p_key[cart], rng.random(n_s), np.full(len(conv_idx), 2.0)])
    sub = (kind == 1).astype(np.int8)
    srt = np.lexsort((sub, key, sess))
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


def _sessions(cust: _Customers, catalog: _Catalog, clock: _Clock, o_cust: np.ndarray, o_sec: np.ndarray,
              g_sec: np.ndarray, drop_sec: np.ndarray, line_order: np.ndarray, line_prod: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """All browsing events: (session, customer or -1, kind, product or -1, second), session ids ranked
    by each session's first event."""
    n = len(cust.first_sec)
    n_cat = len(catalog.cats)
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
    p_sess = np.concatenate([line_order, x_sess])
    p_prod = np.concatenate([line_prod, x_prod])
    p_cart = np.concatenate([np.ones(len(line_order), bool), x_cart])
    n_search = rng.poisson(np.where(converting, 0.6, 0.8))
    s_sess = np.repeat(np.arange(len(anchor)), n_search)

    sess, kind, prod, sec = _session_events(anchor, converting, p_sess, p_prod, p_cart, s_sess, clock, rng)
    # Number sessions by their first event time (ties: creation order); list events by time.
    starts = _group_starts(sess, len(anchor))[:-1]
    sess_rank = np.empty(len(anchor), dtype=np.int64)
    sess_rank[np.lexsort((np.arange(len(anchor)), sec[starts]))] = np.arange(len(anchor))
    within = np.arange(len(sess)) - starts[sess]
    srt = np.lexsort((within, sess_rank[sess], sec))
    return sess_rank[sess][srt], s_cust[sess][srt], kind[srt], prod[srt], sec[srt]


# --------------------------------------------------------------------------------------------------
# The shop
# --------------------------------------------------------------------------------------------------


def _conformed(name: str, columns: dict[str, object]) -> pd.DataFrame:
    """The table ``name`` from its columns, passed through the contract's :func:`conform`."""
    return conform(pd.DataFrame(columns), TABLES[name], source="synthetic shop")


def _utc(value: str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def synthesize_shop(customers: int = 20_000, products: int = 1_000, seed: int = 42,
                    start: str = "2022-01-01", end: str = "2024-01-01",
                    progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """Generate the synthetic shop: ``{"orders", "customers", "products", "sessions"}`` canonical tables.

    Deterministic for given arguments. ``start``/``end`` are parsed by pandas (naive means UTC); all
    timestamps fall in ``[start, end)``. ``progress`` receives a short message per step.
    """
    if customers <= 0 or products <= 0:
        raise ValueError(f"customers ({customers}) and products ({products}) must be positive")
    t0, t1 = _utc(start), _utc(end)
    if t1 - t0 < pd.Timedelta(days=1):
        raise ValueError(f"the period [{start}, {end}) must span at least one day")
    say = progress or (lambda _msg: None)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([int(seed < 0), abs(int(seed))]).spawn(4)]
    clock = _Clock(t0, t1)

    say(f"catalog: {products:,} products")
    catalog = _make_catalog(products, streams[0])

    say(f"customers: {customers:,} and their purchase process")
    cust, o_cust, o_sec, drop_sec = _customer_base(customers, catalog, clock, streams[1])
    rng = streams[2]
    g_sec = clock.draw_seconds(rng, int(round(_GUEST_ORDER_SHARE * len(o_cust))))
    say(f"orders: baskets of {len(o_cust) + len(g_sec):,} orders")
    line_order, line_prod, qty = _order_lines(cust, catalog, o_cust, o_sec, g_sec, rng)

    all_sec = np.concatenate([o_sec, g_sec])
    all_cust = np.concatenate([o_cust, np.full(len(g_sec), -1, np.int64)])
    n_all = len(all_sec)
    order_rank = np.empty(n_all, dtype=np.int64)
    order_rank[np.lexsort((np.arange(n_all), all_sec))] = np.arange(n_all)
    base = 10 ** max(6, len(str(n_all)))
    order_ids = [str(base + i) for i in range(n_all)]  # by order_rank

    l_sec = all_sec[line_order]
    l_cust = all_cust[line_order]
    promo = clock.is_promo(l_sec)
    u = rng.random(len(line_order))
    discount = np.where(promo & (u < _PROMO_TAKE_UP), rng.choice([0.15, 0.2, 0.25, 0.3], len(u)),
                        np.where(u > 1 - _COUPON_PROB, 0.1, 0.0))
    unit_price = np.round(catalog.price[line_prod] * (1 - discount), 2)

    say("orders: returns")
    rate = np.array([c.return_rate for c in catalog.cats])[catalog.product_cat[line_prod]]
    p_ret = np.where(l_cust >= 0, np.minimum(rate * cust.returner[np.maximum(l_cust, 0)], 0.8), 0.0)
    ret = np.flatnonzero(rng.random(len(line_order)) < p_ret)
    delay = np.round((1.5 + rng.gamma(*_RETURN_DELAY, n_all)) * _DAY).astype(np.int64)  # one parcel per order
    r_sec = l_sec[ret] + delay[line_order[ret]]
    r_qty = qty[ret].copy()
    partial = (r_qty > 1) & (rng.random(len(ret)) < 0.3)
    r_qty[partial] = rng.integers(1, r_qty[partial].astype(np.int64))
    ret_in = r_sec <= clock.last_sec
    ret, r_sec, r_qty = ret[ret_in], r_sec[ret_in], r_qty[ret_in]

    cust_ids = _ids("C", customers, 6)
    prod_ids = _ids("P", products, 5)
    o_line = np.concatenate([line_order, line_order[ret]])
    is_return = np.concatenate([np.zeros(len(qty), bool), np.ones(len(ret), bool)])
    o_prod = np.concatenate([line_prod, line_prod[ret]])
    l_secs = np.concatenate([l_sec, r_sec])
    srt = np.lexsort((o_prod, order_rank[o_line], is_return, l_secs))
    o_line, is_return, o_prod, l_secs = o_line[srt], is_return[srt], o_prod[srt], l_secs[srt]
    quantity = np.concatenate([qty, -r_qty])[srt]
    price = np.concatenate([unit_price, unit_price[ret]])[srt]
    orders = _conformed("orders", {
        "order_id": _coded(order_rank[o_line] + n_all * is_return, order_ids + ["R" + i for i in order_ids]),
        "customer_id": _coded(all_cust[o_line], cust_ids),
        "product_id": _coded(o_prod, prod_ids),
        "quantity": quantity,
        "unit_price": price,
        "amount": np.round(quantity * price, 2),
        "ordered_at": clock.timestamps(l_secs),
        "is_return": is_return,
    })

    say("sessions")
    s_sess, s_cust, s_kind, s_prod, s_sec = _sessions(cust, catalog, clock, o_cust, o_sec, g_sec, drop_sec,
                                                      line_order, line_prod, streams[3])
    # first_seen: the first event of the first order's session (never after the first order).
    first_event = np.full(customers, np.iinfo(np.int64).max)
    reg = s_cust >= 0
    np.minimum.at(first_event, s_cust[reg], s_sec[reg])
    first_seen = np.minimum(first_event, o_sec[_group_starts(o_cust, customers)[:-1]])
    sess_ids = _ids("S", int(s_sess.max()) + 1 if len(s_sess) else 0, 8)
    sessions = _conformed("sessions", {
        "session_id": _coded(s_sess, sess_ids),
        "customer_id": _coded(s_cust, cust_ids),
        "occurred_at": clock.timestamps(s_sec),
        "event_type": _coded(s_kind, ["view", "add_to_cart", "purchase", "search"]),
        "product_id": _coded(s_prod, prod_ids),
    })
    del s_sess, s_cust, s_kind, s_prod, s_sec, sess_ids, reg
    customers_df = _conformed("customers", {
        "customer_id": np.array(cust_ids, dtype=object),
        "first_seen": clock.timestamps(first_seen),
        "country": cust.country,
    })
    products_df = _conformed("products", {
        "product_id": np.array(prod_ids, dtype=object),
        "name": np.array(catalog.names, dtype=object),
        "category": np.array([c.name for c in catalog.cats], dtype=object)[catalog.product_cat],
        "unit_price": catalog.price,
    })
    say(f"done: {len(orders):,} order lines, {len(sessions):,} session events")
    return {"orders": orders, "customers": customers_df, "products": products_df, "sessions": sessions}
