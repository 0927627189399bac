"""Loading: a folder of YAML files -> a validated, compiled Catalog, or every problem at once.

files.py (bounded reading) -> yaml_marks.py (YAML with marks) -> schema.py (JSON Schema) -> model.py (attrs
classes, delays.py) -> catalog.py (compile, dryrun.py); report.py locates problems; describe.py prints a catalog.
"""
