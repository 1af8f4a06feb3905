"""Event taxonomy: the declared events, properties and traits, and the checks against them."""
