"""Customer-behaviour prediction: churn / purchase propensity (and, later, lifetime value)."""
