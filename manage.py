#!/usr/bin/env python
"""Django's command-line utility for marketing_ai."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads the settings, which refuse bad configuration
    except ImproperlyConfigured as exc:  # an operator's mistake: the message, not a traceback
        sys.exit(f"marketing_ai: {exc}")

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
