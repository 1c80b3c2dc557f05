"""The refresh worker: runs data models' snapshot refreshes off the request."""
