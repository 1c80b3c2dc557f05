"""Demo data: a SQLite database of orders over two years, and reports over it."""
