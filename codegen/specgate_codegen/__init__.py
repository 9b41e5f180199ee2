"""specgate's compiler: HOCON specs → checked IR → lock file, validator and dispatch tables.

Only this package imports pyhocon; the runtime reads what it writes and never parses HOCON.
"""

GENERATOR_VERSION = "1"
