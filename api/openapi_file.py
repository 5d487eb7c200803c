"""The committed OpenAPI document: ``python -m api.openapi_file`` rewrites it.

``tests/test_api.py`` fails when ``api/openapi.json`` differs from what the app serves.
"""

from __future__ import annotations

import json
from pathlib import Path

from api.app import create_app
from api.auth import Tokens
from runtime.settings import Settings

OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.json"


def render() -> str:
    app = create_app(Settings(), client=object(), tokens=Tokens({}))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OPENAPI_FILE.write_text(render())
    print(f"wrote {OPENAPI_FILE}")
