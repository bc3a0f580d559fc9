"""Built-in students plugins."""
