"""The OpenAPI schema of the whole API (drf-spectacular over crm's and campaigns' views, with
crm.api.schema's descriptions): `manage.py spectacular --validate` finds nothing to warn about."""

import subprocess
import sys

from tests.conftest import ROOT


def test_openapi_schema_validates_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
