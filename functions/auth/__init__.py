"""The REQUEST authorizer function."""
