"""Past one core: worker processes (workers.py, child.py) that claim blocks of instances (claims.py) and write
keyed lines (keyed.py), merged in order into the sinks (merge.py)."""
