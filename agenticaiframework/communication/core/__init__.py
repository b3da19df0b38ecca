"""The shared machinery every client uses, with no protocol of its own.

config (settings and their merging), errors (the one hierarchy), security
(the URL policy and redaction), retry, auth, events, health, lifecycle, tls
and codecs (message encoding). Import from the modules, or from
``agenticaiframework.communication``.
"""
