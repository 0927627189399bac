"""Scenarios: a situation to run a catalog in, for a test or a demo, without copying chain files.

model.py (the file, checked against the catalog) -> apply.py (a derived catalog, scripted starts, faults) ->
load.py (load_scenario: file -> Applied, or every problem at once); run.py puts it together with the run's
options and arrivals.
"""
