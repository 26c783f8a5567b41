"""One router per resource, all under /v1 except the health check."""
