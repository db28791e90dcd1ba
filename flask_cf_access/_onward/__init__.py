"""Onward calls to other Access applications (public as ``flask_cf_access.onward``)."""
