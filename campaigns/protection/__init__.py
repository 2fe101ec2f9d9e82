"""Protecting the sender's reputation: bounce and complaint rates (rates), a circuit breaker
that pauses a campaign whose early rates pass its workspace's thresholds (breaker), and
per recipient-domain throttling with backoff on providers' throttling answers (throttle)."""
