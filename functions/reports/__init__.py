"""The report-call function: /api/call, /api/reports, choices, definitions, server time."""
