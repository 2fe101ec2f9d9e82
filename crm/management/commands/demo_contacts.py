"""Gives the demo's customers (Online Retail II has no contact details) made-up e-mail addresses
at example.invalid (a reserved domain that can never receive mail), e-mail consent for a share of
them, and a segment "Demo: newsletter subscribers", so campaigns can be tried on the demo.
Only customers without an e-mail address are touched; running it again changes nothing."""

import random

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from crm.models import Consent, Customer, Segment, SegmentMembership, Workspace

SEGMENT = "Demo: newsletter subscribers"


class Command(BaseCommand):
    help = "Made-up addresses and e-mail consent for the demo workspace's customers."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--share", type=float, default=0.8, help="who gives e-mail consent")

    @transaction.atomic
    def handle(self, *args, workspace: str, share: float, **options) -> None:
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            raise CommandError(f"no workspace {workspace!r}")
        rng = random.Random(7)  # noqa: S311  (a reproducible demo, not a secret)
        people = list(Customer.objects.filter(workspace=ws, email=None, erased_at=None))
        for person in people:
            person.email = f"customer-{person.pk}@example.invalid"
        Customer.objects.bulk_update(people, ["email"], batch_size=2000)
        now = timezone.now()
        consenting = [p for p in people if rng.random() < share]
        Consent.objects.bulk_create(
            [
                Consent(
                    customer=p,
                    channel="email",
                    status="subscribed",
                    source="demo data",
                    updated_at=now,
                )
                for p in consenting
            ],
            ignore_conflicts=True,
        )
        segment, _ = Segment.objects.get_or_create(
            workspace=ws,
            name=SEGMENT,
            defaults={
                "kind": Segment.Kind.STATIC,
                "description": "Demo customers with made-up addresses who opted in",
            },
        )
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(segment=segment, customer=p) for p in consenting],
            ignore_conflicts=True,
            batch_size=2000,
        )
        Segment.objects.filter(pk=segment.pk).update(
            member_count=segment.memberships.count(), refreshed_at=now
        )
        self.stdout.write(
            f"{len(people)} addresses given, {len(consenting)} opted in (segment {SEGMENT!r})"
        )
