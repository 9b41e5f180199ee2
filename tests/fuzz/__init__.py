"""Property-based and hostile-input tests of the running server (issue 9: reliability and security)."""
