"""The pipeline: accept records, deliver them through providers, pull CRM-side edits back."""
