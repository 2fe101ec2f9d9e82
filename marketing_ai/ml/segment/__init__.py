"""Customer segmentation: RFM scores and named RFM groups (clustering comes next)."""
