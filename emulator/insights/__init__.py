"""Microsoft.Insights: the subscription's Activity Log (administrative events)."""
