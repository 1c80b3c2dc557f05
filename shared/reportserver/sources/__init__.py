"""Data sources behind one interface: run a statement with bound values and yield row batches."""
