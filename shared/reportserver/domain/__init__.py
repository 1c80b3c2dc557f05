"""The decisions of the report server: tokens, principals, reports, parameters and report calls."""
