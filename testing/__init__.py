"""Test helpers for Stillhouse and for plugin authors: tiny real models, isolated plugin hosts, a
temporary STILLHOUSE_HOME. ``stillhouse.testing.fixtures`` is registered as a pytest plugin, so its
fixtures are available in any project that installs stillhouse.
"""

from stillhouse.testing.tiny import CHAT_TEMPLATE, build_tiny_model, build_tiny_tokenizer

__all__ = ["CHAT_TEMPLATE", "build_tiny_model", "build_tiny_tokenizer"]
