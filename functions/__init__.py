"""Lambda functions: one folder each, a thin handler over the reportserver package."""
