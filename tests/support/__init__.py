"""Shared helpers of the test suite (imported as `support`; pytest puts tests/ on the path)."""
