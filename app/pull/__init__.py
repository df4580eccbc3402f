"""Pull: CRM-side edits brought back here (incremental, deduplicated, scheduled, webhook-fed)."""
