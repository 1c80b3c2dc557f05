"""The report server's own package: domain, data sources, renderers, storage adapters, HTTP mapping."""
