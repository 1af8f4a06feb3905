"""The demo shop (데모몰): a deterministic synthetic Korean e-commerce workspace for demos and benchmarks."""
