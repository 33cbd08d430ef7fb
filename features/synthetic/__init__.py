"""The synthetic shop: ecrm's embedded default data set.

:func:`synthesize_shop` invents an online shop and returns its four canonical tables (``orders``,
``customers``, ``products``, ``sessions``; see :mod:`features.schema`); :func:`generate_shop` streams the
same tables, in time order, to a writer (``ecrm data synthesize`` writes them straight into the
workspace's parquet files). The same arguments always give the same tables.

All timestamps lie in ``[start, end)``, are UTC with microsecond dtype and whole-second values.
The default size (20,000 customers, 1,000 products, two years) gives about 150,000 orders, 650,000
order lines and three million session events.

**Where each part lives.** The generative story is told, step by step, in the docstrings of the
modules that tell it in code:

* :mod:`features.synthetic.clock`: the calendar: the seasonal intensity of shop activity (daily, weekly
  and yearly rhythms, sales) and "shop time", its integral, from which every time is drawn;
* :mod:`features.synthetic.catalog`: the categories and the products (prices, popularity, names,
  complements);
* :mod:`features.synthetic.skeleton`: the customers (acquisition, purchase rate, drop-out), the times of
  the orders they place, the guest orders, the orders' chronological numbering and the cut into blocks;
* :mod:`features.synthetic.block_orders`: a block's customers' taste, basket size and country, and
  their orders: order lines, prices and returns;
* :mod:`features.synthetic.block_sessions`: a block's browsing sessions, consistent with its orders;
* :mod:`features.synthetic.blocks`: generating every block (in worker processes if allowed) and
  spilling it;
* :mod:`features.synthetic.spill`: the raw column files a block's rows are spilled to, read back in
  time windows;
* :mod:`features.synthetic.tables`: the merge: the canonical Arrow tables built window by window (ids,
  labels, schemas) and handed to the sink;
* :mod:`features.synthetic.arrays`: numpy helpers the others share (grouping, sorting, sampling);
* :mod:`features.synthetic.shop`: :func:`generate_shop` and :func:`synthesize_shop`, which put it all
  together.

**How it is built, and what that costs.** A shop of a million customers has about 150 million session
events, so the shop is never held in memory as a whole:

1. *The skeleton* (:mod:`~features.synthetic.skeleton`), drawn for everyone at once because it is
   small (a few numbers per customer and per order): the catalog, the customers with their purchase
   rates and order times (only the orders a customer actually places are drawn, as order statistics),
   the guest orders, and the chronological rank of every order, which is its order id.
2. *Blocks* (:mod:`~features.synthetic.blocks`) of consecutive customers with about
   :data:`~features.synthetic.shop._BLOCK_ORDERS` orders together (and a share of the guest orders), so
   that every block is about as big whatever the customers' ages: their baskets, taste, order lines,
   returns and sessions, each block from its own random stream (so blocks can be generated in parallel
   processes). Each block's rows go, grouped by day, into raw column files in a scratch folder
   (:mod:`~features.synthetic.spill`), ids still integers (customer, product, order rank, session).
3. *The merge* (:mod:`~features.synthetic.tables`): the sessions are numbered by their first event
   (one sort of the sessions' start times), then every table is read back one time window at a time
   from all blocks, sorted and handed over as an Arrow table (one parquet row group); ids become
   strings only here.

Memory therefore grows with the block size, not with the shop, apart from the skeleton and the
sessions' start times and ranks (a few hundred bytes per customer). The shop depends on the block
size, which is fixed, so it depends only on the arguments (not on the number of processes).
"""

from features.synthetic.shop import generate_shop, synthesize_shop
from features.synthetic.tables import TableSink

__all__ = ["TableSink", "generate_shop", "synthesize_shop"]
