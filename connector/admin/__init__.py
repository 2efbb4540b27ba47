"""The ops command line and the library calls it makes, one module per noun."""
