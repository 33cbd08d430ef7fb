"""Loaders: turn a shop's files into the canonical tables (see :mod:`features.schema`).

Two sources:

- :func:`load_online_retail`: the UCI *Online Retail II* export (xlsx with its two yearly sheets, csv or
  parquet; the older *Online Retail* column names are accepted too).
- :func:`load_orders`: any CSV/parquet file of order lines with canonical column names, or other names
  renamed by a mapping (``--map customer_id=CustID``).

Nothing is dropped silently: every row that does not become an order line goes to the rejects table
with its 1-based row number in the file and the reason, and is counted. Columns that are not part of
the data contract (names, e-mails, addresses, phone numbers, ...) are dropped before validation, so they
reach neither the tables nor the rejects; their names are reported. Customers in the workspace's erasure
log are skipped and counted, and with ``privacy.pseudonymize_customer_ids`` customer ids are replaced by
keyed pseudonyms before anything else sees them (see :mod:`features.privacy.loading`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.privacy.loading import LoadPrivacy, PreparedRaw, prepare_raw
from features.schema import TIMESTAMP_DTYPE
from features.storage import Workspace, write_json_atomic, write_parquet_atomic, write_tables

# Canonical fields a user's order file may provide (``--map canonical=source``).
ORDER_FIELDS: dict[str, str] = {
    "customer_id": "customer identifier (required; empty only on guest rows)",
    "order_id": "order or invoice number (required)",
    "ordered_at": "time of the order (required)",
    "amount": "line total (required unless quantity and unit_price are given)",
    "quantity": "units on the line",
    "unit_price": "price per unit",
    "product_id": "product identifier (optional; without it there is no recommender)",
    "is_return": "true on return / cancellation lines (optional; otherwise a negative amount or quantity)",
    "is_guest": "true on guest checkouts without a customer account (optional)",
    "country": "customer's country (optional)",
    "product_name": "product name (optional)",
    "category": "product category (optional)",
}

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0", ""})


class DataFileError(ValueError):
    """A file cannot be loaded as a whole; the message names the file, the column and the rule."""


@dataclass
class LoadResult:
    """Canonical tables built from one file, the rejected rows with reasons, and counts for the user."""

    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    source: str = ""
    dropped_columns: list[str] = field(default_factory=list)  # file columns not loaded (outside the contract)
    customer_column: str = ""  # the file's customer id column (its name in the rejects)
    pseudonymized: bool = False  # customer ids are keyed pseudonyms


# ----------------------------------------------------------------------------------------------------
# reading files
# ----------------------------------------------------------------------------------------------------


def read_table_file(path: str | Path) -> pd.DataFrame:
    """Read a CSV, TSV, parquet or Excel file into string-or-native columns; all sheets of an xlsx.

    Raises :class:`DataFileError` naming the file when it is missing, of an unknown kind or unreadable.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{p}: file not found")
    suffix = "".join(s for s in p.suffixes[-2:] if s in {".csv", ".tsv", ".txt", ".gz", ".zip"}) or p.suffix
    suffix = suffix.lower()
    try:
        if p.suffix.lower() == ".parquet":
            df = pd.read_parquet(p)
        elif p.suffix.lower() in {".xlsx", ".xlsm", ".xls"}:
            sheets = pd.read_excel(p, sheet_name=None, dtype={"Invoice": str, "InvoiceNo": str, "StockCode": str})
            if not sheets:
                raise DataFileError(f"{p}: the workbook has no sheets")
            df = pd.concat(sheets.values(), ignore_index=True)
        elif suffix.startswith((".csv", ".txt")) or suffix.startswith(".tsv"):
            sep = "\t" if ".tsv" in suffix else None
            df = pd.read_csv(p, sep=sep, engine="python" if sep is None else "c", dtype=str,
                             keep_default_na=False, na_values=[""], encoding_errors="replace")
        else:
            raise DataFileError(f"{p}: unsupported file type '{p.suffix}' (use .csv, .tsv, .parquet or .xlsx)")
    except DataFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is reported with the file name
        raise DataFileError(f"{p}: cannot be read ({type(exc).__name__}: {exc})") from exc
    if df.empty:
        raise DataFileError(f"{p}: the file has no rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True)


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``canonical=source`` pairs (from ``--map``) into a dict; errors name the bad pair."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        canonical, sep, source = pair.partition("=")
        canonical, source = canonical.strip(), source.strip()
        if not sep or not canonical or not source:
            raise DataFileError(f"--map '{pair}': expected canonical=source, e.g. customer_id=CustomerID")
        if canonical not in ORDER_FIELDS:
            raise DataFileError(f"--map '{pair}': unknown canonical column '{canonical}'; "
                                f"known: {', '.join(ORDER_FIELDS)}")
        if canonical in mapping:
            raise DataFileError(f"--map '{pair}': '{canonical}' is mapped twice")
        mapping[canonical] = source
    return mapping


# ----------------------------------------------------------------------------------------------------
# row-level helpers
# ----------------------------------------------------------------------------------------------------


class _Rejector:
    """Collects rejected rows (row number, reason, original values) while rules are applied in order."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.reason = pd.Series(pd.NA, index=raw.index, dtype="string")

    def reject(self, mask: pd.Series | np.ndarray, reason: str) -> None:
        """Mark rows matching ``mask`` (and not already rejected) with ``reason``."""
        mask = pd.Series(np.asarray(mask, dtype=bool), index=self.raw.index) & self.reason.isna()
        self.reason[mask] = reason

    @property
    def kept(self) -> pd.Series:
        return self.reason.isna()

    def frame(self) -> pd.DataFrame:
        bad = self.reason.notna()
        out = self.raw.loc[bad].astype("string")
        out.insert(0, "reason", self.reason[bad])
        out.insert(0, "row", (self.raw.index[bad] + 1).astype("int64"))
        return out.reset_index(drop=True)


def clean_id(values: pd.Series) -> pd.Series:
    """Ids as strings: trimmed, integral floats without a trailing ``.0``, empty strings as null."""
    if pd.api.types.is_float_dtype(values):
        known = values.notna()
        if (values[known] == np.floor(values[known])).all():
            out = pd.Series(pd.NA, index=values.index, dtype="string")
            out[known] = values[known].astype("int64").astype(str)
            return out
    s = values.astype("string[pyarrow]").str.strip()
    float_like = s.str.contains(r"^-?\d+\.0+$", regex=True).fillna(False)
    if float_like.any():
        s = s.where(~float_like, s.str.split(".").str[0])
    s = s.astype("string")
    return s.mask(s == "")


def parse_number(values: pd.Series) -> pd.Series:
    """Numbers from numeric or text columns (thousands separators and currency signs removed); NaN if not."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    s = values.astype("string").str.strip().str.replace(r"[,\s£$€]", "", regex=True)
    return pd.to_numeric(s, errors="coerce").astype("float64")


def parse_flag(values: pd.Series) -> pd.Series:
    """Booleans from bool or text columns (true/false, yes/no, 1/0); null where the text is neither."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    s = values.astype("string").str.strip().str.lower().fillna("")
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[s.isin(TRUE_WORDS)] = True
    out[s.isin(FALSE_WORDS)] = False
    return out


_ZONED = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}:?\d{2})$"


def parse_time(values: pd.Series, timezone: str) -> pd.Series:
    """Timestamps in UTC; values without an offset are local times in ``timezone``; NaT if unparseable.

    At the autumn clock change the repeated local hour is read as the first (summer-time) occurrence.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    out = pd.Series(pd.NaT, index=values.index, dtype=TIMESTAMP_DTYPE)
    if pd.api.types.is_datetime64_dtype(values):
        naive, parsed = pd.Series(True, index=values.index), values
    else:
        text = values.astype("string").str.strip()
        zoned = text.str.contains(_ZONED, regex=True).fillna(False).astype(bool)
        if zoned.any():
            out[zoned] = pd.to_datetime(text[zoned], errors="coerce", format="mixed", utc=True)
        naive = ~zoned
        parsed = pd.to_datetime(text[naive], errors="coerce", format="mixed")
    if naive.any():
        try:
            local = parsed.dt.tz_localize(timezone, ambiguous=np.ones(len(parsed), dtype=bool),
                                          nonexistent="shift_forward")
        except Exception as exc:  # noqa: BLE001 - unknown zone names
            raise DataFileError(f"unknown time zone '{timezone}': {exc}") from exc
        out[naive] = local.dt.tz_convert("UTC")
    return out


def group_mode(df: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Most frequent non-null ``column`` value per ``key`` (ties: the smallest value), vectorized."""
    sizes = df.dropna(subset=[key, column]).groupby([key, column], sort=True, observed=True).size()
    sizes = sizes.reset_index(name="n").sort_values([key, "n"], ascending=[True, False], kind="stable")
    return sizes.drop_duplicates(key).set_index(key)[column]


def derive_tables(lines: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Build ``orders``, ``customers`` and (with product ids) ``products`` from cleaned order lines.

    ``lines`` has the orders columns plus optional ``country``, ``product_name`` and ``category``.
    A customer's ``first_seen`` is their first order line; ``country`` their most frequent one. A
    product's ``unit_price`` is the median price on sale lines, ``name`` and ``category`` the most
    frequent ones.
    """
    orders = lines[["order_id", "customer_id", "product_id", "quantity", "unit_price", "amount",
                    "ordered_at", "is_return"]].sort_values("ordered_at", kind="stable").reset_index(drop=True)
    tables = {"orders": orders}
    known = lines[lines["customer_id"].notna()]
    customers = known.groupby("customer_id", sort=True).agg(first_seen=("ordered_at", "min")).reset_index()
    if "country" in lines and lines["country"].notna().any():
        customers["country"] = customers["customer_id"].map(group_mode(known, "customer_id", "country"))
    else:
        customers["country"] = pd.NA
    tables["customers"] = customers
    if lines["product_id"].notna().any():
        with_product = lines[lines["product_id"].notna()]
        sales = with_product[~with_product["is_return"]]
        products = pd.DataFrame({"product_id": np.sort(with_product["product_id"].unique())})
        price = sales.groupby("product_id")["unit_price"].median()
        fallback = with_product.groupby("product_id")["unit_price"].median()
        products["unit_price"] = products["product_id"].map(price).fillna(products["product_id"].map(fallback))
        for col, name in (("product_name", "name"), ("category", "category")):
            if col in lines and lines[col].notna().any():
                products[name] = products["product_id"].map(group_mode(with_product, "product_id", col))
            else:
                products[name] = pd.NA
        tables["products"] = products[["product_id", "name", "category", "unit_price"]]
    return tables


def _counts(raw_rows: int, lines: pd.DataFrame, tables: dict[str, pd.DataFrame], rejects: pd.DataFrame,
            prepared: PreparedRaw) -> dict[str, int]:
    counts = {
        "rows read": raw_rows,
        "columns not loaded (outside the data contract)": len(prepared.dropped_columns),
        "rows of erased customers (not loaded)": prepared.erased_rows,
        "order lines kept": len(lines),
        "orders": int(lines["order_id"].nunique()),
        "return lines": int(lines["is_return"].sum()),
        "guest lines (no customer id)": int(lines["customer_id"].isna().sum()),
        "customers": len(tables["customers"]),
        "products": len(tables.get("products", ())),
        "rows rejected": len(rejects),
    }
    for reason, n in rejects["reason"].value_counts().sort_index().items():
        counts[f"rejected: {reason}"] = int(n)
    return counts


# ----------------------------------------------------------------------------------------------------
# the Online Retail II export
# ----------------------------------------------------------------------------------------------------

# Column names of Online Retail II, with the older Online Retail (I) names as aliases.
ONLINE_RETAIL_COLUMNS: dict[str, tuple[str, ...]] = {
    "Invoice": ("Invoice", "InvoiceNo"),
    "StockCode": ("StockCode",),
    "Description": ("Description",),
    "Quantity": ("Quantity",),
    "InvoiceDate": ("InvoiceDate",),
    "Price": ("Price", "UnitPrice"),
    "Customer ID": ("Customer ID", "CustomerID"),
    "Country": ("Country",),
}
# Service lines that are not products: postage and carriage, manual entries, discounts, samples,
# bank and marketplace fees, charity, adjustments, test items and gift vouchers.
NON_PRODUCT_CODE = re.compile(
    r"^(POST|DOT|M|C2|C3|D|S|B|CRUK|PADS|BANK CHARGES|AMAZONFEE|ADJUST\d*|TEST\d*|GIFT_.*)$", re.IGNORECASE)


def is_non_product_code(codes: pd.Series) -> pd.Series:
    """True for Online Retail stock codes that are services or bookkeeping, not products.

    The listed codes, plus any other code without a digit (such codes are fees or adjustments in this
    shop), except the ``DCGS...`` codes of real items sold through the web shop.
    """
    c = codes.astype("string").str.strip().fillna("")
    listed = c.str.match(NON_PRODUCT_CODE)
    no_digit = ~c.str.contains(r"\d") & ~c.str.upper().str.startswith("DCGS")
    return (listed | no_digit).astype(bool)


def product_type(description: pd.Series) -> pd.Series:
    """a coarse category from a product description: its last alphabetic word, lower-cased (e.g. 'holder').

    Online Retail has no category column; in its descriptions the last word is the product type
    ("WHITE HANGING HEART T-LIGHT HOLDER"). Descriptions without a letter give null.
    """
    unique = pd.Series(description.dropna().unique()).astype("string")
    last = unique.str.strip().str.lower().str.extract(r"([a-z][a-z\-']*)[^a-z]*$")[0].astype("string")
    return description.map(dict(zip(unique, last))).astype("string")


def load_online_retail(path: str | Path, timezone: str = "Europe/London",
                       progress: Callable[[str], None] | None = None,
                       privacy: LoadPrivacy | None = None) -> LoadResult:
    """Load the Online Retail (II) export into canonical tables.

    Rules (each rejected row gets one reason, the first that applies):

    - ``A`` invoices (bad-debt adjustments) are rejected;
    - non-product stock codes (see :func:`is_non_product_code`) are rejected as ``non-product code``;
    - exact duplicate rows are kept once;
    - unparseable invoice dates, non-positive prices and zero quantities are rejected; a line with a
      negative quantity on an ordinary invoice (a stock write-off) is rejected;
    - ``C`` invoices become return lines (``is_return``, negative quantity and amount);
    - rows without a customer id are guest checkouts: kept, with a null ``customer_id`` (they count for
      product popularity, never for customer features);
    - invoice times are local shop time (``timezone``) converted to UTC; customer ids lose the ``.0``.

    Other columns are dropped, forgotten customers skipped, ids pseudonymized as ``privacy`` says
    (:func:`features.privacy.loading.prepare_raw`).
    """
    say = progress or (lambda _m: None)
    p = Path(path)
    say(f"reading {p}")
    raw = read_table_file(p)
    cols: dict[str, str] = {}
    for canonical, names in ONLINE_RETAIL_COLUMNS.items():
        found = next((n for n in names if n in raw.columns), None)
        if found is None and canonical not in {"Description", "Country"}:
            raise DataFileError(f"{p}: missing column '{canonical}' of the Online Retail export "
                                f"(columns found: {', '.join(map(str, raw.columns))})")
        if found is not None:
            cols[canonical] = found
    duplicate = raw.duplicated(keep="first")  # over every column of the file, as before the privacy step
    prepared = _prepare(raw, list(cols.values()), cols["Customer ID"], privacy, p, say)
    raw_rows, raw = len(raw), prepared.raw
    say(f"{raw_rows:,} rows; applying the Online Retail rules")
    rej = _Rejector(raw)
    invoice = clean_id(raw[cols["Invoice"]]).fillna("")
    code = raw[cols["StockCode"]].astype("string").str.strip()
    quantity = parse_number(raw[cols["Quantity"]])
    price = parse_number(raw[cols["Price"]])
    when = parse_time(raw[cols["InvoiceDate"]], timezone)
    customer = clean_id(raw[cols["Customer ID"]])
    is_return = invoice.str.upper().str.startswith("C")

    rej.reject(invoice == "", "missing invoice number")
    rej.reject(invoice.str.upper().str.startswith("A"), "adjustment invoice (bad debt)")
    rej.reject(code.isna(), "missing stock code")
    rej.reject(is_non_product_code(code), "non-product code")
    rej.reject(duplicate.loc[raw.index], "exact duplicate of an earlier row")
    rej.reject(when.isna(), "unparseable invoice date")
    rej.reject(quantity.isna(), "quantity is not a number")
    rej.reject(price.isna(), "price is not a number")
    rej.reject(quantity == 0, "zero quantity")
    rej.reject(price <= 0, "non-positive price")
    rej.reject(~is_return & (quantity < 0), "negative quantity on a sale invoice (stock write-off)")

    keep = rej.kept
    q = quantity[keep].abs().where(~is_return[keep], -quantity[keep].abs())
    lines = pd.DataFrame({
        "order_id": invoice[keep],
        "customer_id": customer[keep],
        "product_id": code[keep].str.upper(),
        "quantity": q,
        "unit_price": price[keep],
        "amount": q * price[keep],
        "ordered_at": when[keep],
        "is_return": is_return[keep],
        "country": raw.loc[keep, cols["Country"]].astype("string").str.strip() if "Country" in cols else pd.NA,
        "product_name": raw.loc[keep, cols["Description"]].astype("string").str.strip() if "Description" in cols else pd.NA,
    }).reset_index(drop=True)
    # names and categories come from sale lines (return lines often carry notes instead)
    lines["category"] = product_type(lines["product_name"]).where(~lines["is_return"])
    lines["product_name"] = lines["product_name"].where(~lines["is_return"])
    tables = derive_tables(lines)
    rejects = rej.frame()
    return LoadResult(tables, rejects, _counts(raw_rows, lines, tables, rejects, prepared), source=f"online-retail:{p.name}",
                      dropped_columns=prepared.dropped_columns, customer_column=cols["Customer ID"],
                      pseudonymized=bool(privacy and privacy.pseudonymize))


# ----------------------------------------------------------------------------------------------------
# any file of order lines
# ----------------------------------------------------------------------------------------------------


def load_orders(path: str | Path, mapping: Mapping[str, str] | None = None, timezone: str = "UTC",
                progress: Callable[[str], None] | None = None, privacy: LoadPrivacy | None = None) -> LoadResult:
    """Load a CSV/parquet file of order lines with canonical columns (renamed by ``mapping``).

    Required: ``customer_id``, ``order_id``, ``ordered_at`` and either ``amount`` (line total) or
    ``quantity`` and ``unit_price``. Optional: the other :data:`ORDER_FIELDS`. Other columns are dropped
    before validation (reported in :attr:`LoadResult.dropped_columns`); forgotten customers are skipped and
    ids pseudonymized as ``privacy`` says (:func:`features.privacy.loading.prepare_raw`).

    Rules: return lines (``is_return`` true, or a negative amount/quantity when there is no
    ``is_return`` column) get negative quantity and amount; rows with an empty customer id are guest
    lines when an ``is_guest`` column says so and are rejected otherwise; unparseable times or
    numbers, zero quantities, non-positive prices or amounts on sale lines, and exact duplicate rows
    are rejected with their reason.
    """
    say = progress or (lambda _m: None)
    p = Path(path)
    mapping = dict(mapping or {})
    say(f"reading {p}")
    raw = read_table_file(p)
    for canonical, source in mapping.items():
        if canonical not in ORDER_FIELDS:
            raise DataFileError(f"--map {canonical}={source}: unknown canonical column '{canonical}'")
        if source not in raw.columns:
            raise DataFileError(f"{p}: mapped column '{source}' (for {canonical}) is not in the file; "
                                f"columns found: {', '.join(map(str, raw.columns))}")
    col = {c: mapping.get(c, c) for c in ORDER_FIELDS}
    present = {c for c, s in col.items() if s in raw.columns}
    for required in ("customer_id", "order_id", "ordered_at"):
        if required not in present:
            raise DataFileError(f"{p}: missing required column '{required}' "
                                f"(rename with --map {required}=YOUR_COLUMN; columns found: {', '.join(map(str, raw.columns))})")
    if "amount" not in present and not {"quantity", "unit_price"} <= present:
        raise DataFileError(f"{p}: needs column 'amount' (line total) or both 'quantity' and 'unit_price'")
    duplicate = raw.duplicated(keep="first")  # over every column of the file, as before the privacy step
    prepared = _prepare(raw, [col[c] for c in ORDER_FIELDS if c in present], col["customer_id"], privacy, p, say)
    raw_rows, raw = len(raw), prepared.raw
    say(f"{raw_rows:,} rows; validating")
    rej = _Rejector(raw)

    def number(name: str) -> pd.Series:
        values = parse_number(raw[col[name]])
        rej.reject(values.isna(), f"{name} is not a number")
        return values

    order_id = clean_id(raw[col["order_id"]])
    customer = clean_id(raw[col["customer_id"]])
    when = parse_time(raw[col["ordered_at"]], timezone)
    rej.reject(order_id.isna(), "missing order_id")
    rej.reject(when.isna(), "unparseable ordered_at")
    quantity = number("quantity") if "quantity" in present else None
    unit_price = number("unit_price") if "unit_price" in present else None
    amount = number("amount") if "amount" in present else None
    if quantity is None:  # amount only: one unit at the line total
        quantity = pd.Series(np.sign(amount).replace(0, 1.0), index=raw.index)
        unit_price = amount.abs()
    elif unit_price is None:
        unit_price = (amount / quantity).abs()
    if amount is None:
        amount = quantity * unit_price
    rej.reject(quantity == 0, "zero quantity")
    if "unit_price" in present:
        rej.reject(unit_price <= 0, "non-positive unit_price")

    negative = (quantity < 0) | (amount < 0)
    if "is_return" in present:
        flag = parse_flag(raw[col["is_return"]])
        rej.reject(flag.isna(), "is_return is not true/false")
        is_return = flag.fillna(False).astype(bool)
        rej.reject(~is_return & negative, "negative quantity or amount on a sale line")
    else:
        is_return = negative.fillna(False).astype(bool)
    rej.reject(~is_return & (amount <= 0), "non-positive amount on a sale line")
    rej.reject(unit_price <= 0, "non-positive unit_price")

    if "is_guest" in present:
        guest = parse_flag(raw[col["is_guest"]])
        rej.reject(guest.isna(), "is_guest is not true/false")
        guest = guest.fillna(False).astype(bool)
        rej.reject(~guest & customer.isna(), "missing customer_id on a non-guest row")
        customer = customer.mask(guest)
    else:
        rej.reject(customer.isna(), "missing customer_id (map an is_guest column to keep guest orders)")
    rej.reject(duplicate.loc[raw.index], "exact duplicate of an earlier row")

    keep = rej.kept
    sign = np.where(is_return[keep], -1.0, 1.0)
    lines = pd.DataFrame({
        "order_id": order_id[keep],
        "customer_id": customer[keep],
        "product_id": clean_id(raw.loc[keep, col["product_id"]]) if "product_id" in present else pd.NA,
        "quantity": quantity[keep].abs() * sign,
        "unit_price": unit_price[keep],
        "amount": amount[keep].abs() * sign,
        "ordered_at": when[keep],
        "is_return": is_return[keep],
    })
    for extra in ("country", "product_name", "category"):
        lines[extra] = raw.loc[keep, col[extra]].astype("string").str.strip() if extra in present else pd.NA
    lines["product_id"] = lines["product_id"].astype("string")
    lines = lines.reset_index(drop=True)
    if lines.empty:
        if raw.empty:
            raise DataFileError(f"{p}: no order lines left: all {raw_rows:,} rows belong to erased customers")
        raise DataFileError(f"{p}: no valid order lines (all {len(raw):,} rows rejected; "
                            f"first reason: {rej.reason.dropna().iloc[0]})")
    tables = derive_tables(lines)
    rejects = rej.frame()
    return LoadResult(tables, rejects, _counts(raw_rows, lines, tables, rejects, prepared), source=f"orders:{p.name}",
                      dropped_columns=prepared.dropped_columns, customer_column=col["customer_id"],
                      pseudonymized=bool(privacy and privacy.pseudonymize))


def _prepare(raw: pd.DataFrame, used: list[str], customer_column: str, privacy: LoadPrivacy | None, p: Path,
             say: Callable[[str], None]) -> PreparedRaw:
    """The privacy step of both loaders (see :func:`features.privacy.loading.prepare_raw`), reported."""
    prepared = prepare_raw(raw, used, customer_column, clean_id(raw[customer_column]), privacy, source=str(p))
    if prepared.dropped_columns:
        say(f"not loaded (outside the data contract): {', '.join(prepared.dropped_columns)}")
    if prepared.erased_rows:
        say(f"{prepared.erased_rows:,} rows of erased customers skipped")
    if privacy is not None and privacy.pseudonymize:
        say("customer ids replaced by keyed pseudonyms")
    return prepared


def save_load(ws: Workspace, result: LoadResult) -> None:
    """Store a load in the workspace: tables (validated before anything is written), rejects, manifest.

    The manifest is removed first and written last, so an interrupted save never looks complete.
    """
    manifest = ws.data_dir / "manifest.json"
    if result.tables["orders"].empty:
        raise DataFileError(f"{result.source}: no order lines to store")
    from features.schema import TABLES, conform

    for name, df in result.tables.items():  # validate everything before touching the workspace
        conform(df, TABLES[name], source=f"{result.source} ({name})")
    manifest.unlink(missing_ok=True)
    write_tables(ws, result.tables, source=result.source)
    ws.rejects_dir.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(result.rejects, ws.rejects_dir / "rejects.parquet")
    write_json_atomic({"source": result.source, "counts": result.counts,
                       "loaded_at": pd.Timestamp.now(tz="UTC").isoformat(),
                       "dropped_columns": result.dropped_columns, "customer_column": result.customer_column,
                       "customer_ids": "pseudonymized" if result.pseudonymized else "as in the source"}, manifest)
