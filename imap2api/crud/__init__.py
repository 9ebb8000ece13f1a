"""Every query and write lives here, keyword-only and scoped by owner; callers hold no SQL."""
