"""Infrastructure that is not the template: the local stack, demo data and build helpers."""
