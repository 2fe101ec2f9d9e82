"""crm.importers.customers_csv: what is written when, and which line a report names."""

import io

import pytest

from crm.importers import customers_csv
from crm.models import Customer

pytestmark = pytest.mark.django_db


def test_a_file_the_reader_cannot_read_writes_nothing_not_even_earlier_batches(
    workspace, monkeypatch
):
    """Batches are committed as they go; a cell over the limit at the end of the file used to
    come after batches already written (and answered 500). The file is now checked whole
    before the first batch."""
    monkeypatch.setattr(customers_csv, "BATCH", 2)  # five good rows would be three batches
    good = "".join(f"u{i}@example.com,ok\n" for i in range(5))
    text = "email,note\n" + good + "late@example.com," + "a" * 200_000 + "\n"
    report = customers_csv.import_customers_csv(
        workspace=workspace, stream=io.StringIO(text, newline="")
    )
    assert report["imported"] is False
    assert [e["line"] for e in report["errors"]] == [7]
    assert not Customer.objects.filter(workspace=workspace).exists()
    # The same rows without the overlong cell are written, all of them.
    report = customers_csv.import_customers_csv(
        workspace=workspace, stream=io.StringIO("email,note\n" + good, newline="")
    )
    assert report["imported"] is True and report["created"] == 5 and report["errors"] == []


def test_a_cell_at_the_limit_is_read_and_judged_by_its_field(workspace):
    """The limit is the reader's; a cell within it reaches the row checks, which keep the good
    rows (an attribute over 64,000 bytes is that row's error, not the file's)."""
    limit = customers_csv.cell_limit()
    text = f"email,note\nbig@example.com,{'a' * limit}\nok@example.com,fine\n"
    report = customers_csv.import_customers_csv(
        workspace=workspace, stream=io.StringIO(text, newline="")
    )
    assert report["imported"] is True and report["created"] == 1
    assert [(e["line"], sorted(e["errors"])) for e in report["errors"]] == [(2, ["attributes"])]
    assert Customer.objects.get().email == "ok@example.com"


def test_lines_are_the_files_own(workspace):
    """A cell spanning lines and a blank line are counted, so the line named is the one an
    editor shows (counting records named line 4 for the bad e-mail below)."""
    text = 'email,note\na@example.com,"two\nlines"\n\nnot-an-email,x\n'
    report = customers_csv.import_customers_csv(
        workspace=workspace, stream=io.StringIO(text, newline="")
    )
    assert report["created"] == 1
    (error,) = report["errors"]
    assert error["line"] == 5 and "email" in error["errors"]
    assert Customer.objects.get().attributes == {"note": "two\nlines"}
