"""Document-store adapter tests (SQLite, MongoDB over nx-27017)."""
