"""Start-up: wall time of `python -m engine validate --chains chains/` against importing its libraries.

The baseline `python -c "import yaml, jinja2, jsonschema"` is the floor any YAML + Jinja + JSON Schema
tool pays before reading a file. Median of alternating runs.

Both sides start from bytecode, as an installed package does: pip compiled the libraries' bytecode when
it installed them, and the engine's is compiled here first (an editable checkout writes it on first import,
unless PYTHONDONTWRITEBYTECODE is set, as it is on this project's machines: then every start would compile
the engine from source, about 50 ms, and the figure would measure the compiler).
"""

from __future__ import annotations

import subprocess
from typing import Any

from _common import PYTHON, ROOT, engine_command, median, run_child

TARGET_S = 0.3


def measure(rounds: int) -> dict[str, Any]:
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "engine")], check=True)
    validate, imports = [], []
    for _ in range(rounds):
        validate.append(run_child(engine_command("validate", "--chains", "chains/")).wall_s)
        imports.append(run_child([PYTHON, "-c", "import yaml, jinja2, jsonschema"]).wall_s)
    return {"rounds": rounds, "validate_s": median(validate), "imports_s": median(imports),
            "ratio": median(validate) / median(imports)}


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    verdict = "meets" if result["validate_s"] < TARGET_S else "misses"
    return [(f"start-up: `validate --chains chains/` (median of {result['rounds']})", f"{result['validate_s']:.3f} s",
             f"{result['imports_s']:.3f} s `import yaml, jinja2, jsonschema`",
             f"{result['ratio']:.2f}x; {verdict} target < {TARGET_S} s")]
