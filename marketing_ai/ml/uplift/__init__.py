"""Uplift: who a message changes, not who responds (issue 17). No Django here."""
