"""The local stack: moto, resources from template.yaml, the HTTP front door, the handlers."""
