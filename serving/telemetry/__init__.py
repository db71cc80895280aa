"""What the server tells about itself: Prometheus metrics, the request log and OpenTelemetry
traces."""
