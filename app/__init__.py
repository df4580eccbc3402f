"""crm-sync: keeps CRMs in step with the holiday-rental website."""
