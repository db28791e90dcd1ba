"""Runnable examples, quoted by the README and run by the tests."""
