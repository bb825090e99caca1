"""The inference jobs gateway."""
