"""The exports API: request an export, follow its ticket, download its file."""
