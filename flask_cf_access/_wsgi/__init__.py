"""The WSGI middleware: the same checker in front of any WSGI application.

It stands on the core alone; only ``from_flask`` reaches into the Flask layer,
to share the checker of a Flask app.
"""
