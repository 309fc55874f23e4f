"""imvo-submit: check your covenant monitoring data against the secretariat's rules and seal it for the secretariat.

The company tool, and the part of the engine both sides run: the envelope, the rules and the checks."""

__version__ = "0.1.0"
