"""What an item publishes as: the pure resolve pipeline, money and names."""
