"""Payload templates: the Jinja sandbox (sandbox.py, limits.py), the compiler (compiler.py, fastpath.py) and
the facades templates call (fakers.py on simulated_faker.py, randoms.py)."""
