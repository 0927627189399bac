"""Running: the scheduler (scheduler.py) and its clocks (clocks.py), chain instances (interpreter.py), arrivals
(arrivals.py), a run (simulation.py), its options and counts (options.py), and runs from Python (collect.py)."""
