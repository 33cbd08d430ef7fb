"""ecrm features package.

Every module that imports Feast is in this package, so Feast's development-time type checks are turned
off here, before the first Feast import (:func:`configs.runtime.skip_feast_typechecks`: about 5.5 s of
start-up per process; ``ECRM_FEAST_TYPECHECKS=1`` keeps them).
"""

from configs.runtime import skip_feast_typechecks

skip_feast_typechecks()
