"""The Flask layer: the extension, the request primitive and its one object per
request, the decorators and route guards, users, login and logout.
"""
