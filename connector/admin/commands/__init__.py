"""The ``nomi-connector`` command groups, one module per noun (registered by its ``cli``)."""
