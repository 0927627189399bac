"""The JSON Schema file: valid 2020-12, documented, and the one the engine ships."""

from __future__ import annotations

import json

import jsonschema

from engine.load import schema

from .conftest import CHAINS, ROOT


def _properties(node, path="$"):
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}.properties.{name}", sub
        for key, value in node.items():
            yield from _properties(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{path}[{i}]")


def test_the_schema_is_valid_json_schema_2020_12():
    """schemas/chain.schema.json is itself a valid 2020-12 schema."""
    document = json.loads((ROOT / "schemas" / "chain.schema.json").read_text(encoding="utf-8"))
    assert "https://json-schema.org/draft/2020-12/schema" == document["$schema"]
    jsonschema.Draft202012Validator.check_schema(document)


def test_every_property_has_a_description():
    """Editors show a description for every key of a chain file."""
    document = schema.schema()
    keys = [(path, sub) for path, sub in _properties(document) if ".if." not in path]  # `if` tests are not keys
    missing = [path for path, sub in keys if not isinstance(sub, dict) or not sub.get("description")]
    assert [] == missing


def test_every_chain_file_declares_the_schema_for_editors():
    """Each chain file starts with the yaml-language-server comment pointing at the schema."""
    for path in sorted(CHAINS.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert "# yaml-language-server: $schema=../schemas/chain.schema.json" == first
