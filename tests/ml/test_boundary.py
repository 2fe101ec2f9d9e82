"""marketing_ai.ml stands alone: importing it loads neither Django nor Celery nor our apps."""

import subprocess
import sys

from tests.conftest import ROOT


def test_engine_imports_without_the_framework():
    code = (
        "import sys, pkgutil, importlib, marketing_ai.ml as ml\n"
        "for m in pkgutil.walk_packages(ml.__path__, 'marketing_ai.ml.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [n for n in ('django', 'celery', 'rest_framework', 'crm', 'campaigns', 'workers')\n"
        "       if n in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"marketing_ai.ml pulled in: {result.stdout}"
