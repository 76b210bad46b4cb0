"""The ``hms`` command line."""
