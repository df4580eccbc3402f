"""The in-house CRM: its tables (written by the `internal` provider) and its read API."""
