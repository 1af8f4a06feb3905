"""Delivery channels: one small adapter interface (base.Channel) and one module per channel."""
