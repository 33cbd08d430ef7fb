"""The synthetic shop's catalog: its categories and products.

About a dozen and a half named categories (coffee & tea, pet supplies, clothing, shoes, electronics
accessories, ...). Each product gets a generated name, a list price drawn from its category's
log-normal distribution, and a Zipf-like popularity (a few hits, a long tail). Some categories are
consumables with a typical repurchase interval (coffee about monthly, nappies about every 25 days);
each product also has one complementary product in a partner category (a mug for coffee, shoes for
jeans) that is often bought with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.synthetic.arrays import _group_starts, _rank_in_group


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


def _psych_price(p: np.ndarray) -> np.ndarray:
    """Round to shop-like prices: 4.49, 12.99, 0.89."""
    p = np.maximum(p, 0.3)
    return np.round(np.where(p < 10, np.ceil(p * 10) / 10, np.ceil(p)) - 0.01, 2)


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
