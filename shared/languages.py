"""The languages the product speaks: every message, page and catalog is
written in each of them. Arabic and Urdu run right to left."""

SUPPORTED_LANGUAGES = ("en", "ar", "fr", "tr", "es", "ur", "ms")
RTL_LANGUAGES = ("ar", "ur")
