"""volcnb."""
