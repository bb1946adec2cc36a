"""Fixture for the cycle finder: b imports a inside a function."""


class B:
    def a(self):
        from . import a
        return a
