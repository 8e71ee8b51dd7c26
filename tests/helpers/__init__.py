"""Code the tests share (fixtures and markers stay in tests/conftest.py)."""
