"""The package as users install it: a wheel that carries the schema and validates on its own."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from .conftest import CHAINS, ROOT


def test_the_wheel_ships_the_schema_and_validates_outside_the_source_tree(tmp_path):
    """An installed wheel finds chain.schema.json inside the package, away from the checkout."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("chainsim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "engine/schemas/chain.schema.json" in names and "engine/py.typed" in names
    assert "engine/schemas/scenario.schema.json" in names
    assert {"engine/server/page/index.html", "engine/server/page/app.js", "engine/server/page/style.css",
            "engine/server/app.py", "engine/store/sqlite.py"} <= set(names)  # serve works from the wheel
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    result = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                             "from engine.cli import main; raise SystemExit(main(sys.argv[2:]))",
                             str(target), "validate", "--chains", str(CHAINS)],
                            cwd=tmp_path, capture_output=True, text=True)
    assert (0, "") == (result.returncode, result.stdout)
    assert result.stderr.startswith(f"{CHAINS}: {len(list(CHAINS.glob('*.yaml')))} chains valid\n")
