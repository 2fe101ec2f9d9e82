"""API keys: created once with their secret shown once; only a hash is kept."""

import secrets

from django.utils import timezone

from crm.models import ApiKey, Workspace


def api_key_create(*, workspace: Workspace, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Creates a key; returns it and the full secret (`mai_<prefix>_<secret>`), shown only now."""
    unknown = sorted(set(scopes) - set(ApiKey.SCOPES))
    if unknown or not scopes:
        raise ValueError(
            f"unknown scope(s): {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(ApiKey.SCOPES)}"
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        prefix=prefix,
        key_hash=ApiKey.hash(secret),
        scopes=sorted(set(scopes)),
    )
    return key, f"mai_{prefix}_{secret}"


def api_key_revoke(*, key: ApiKey) -> None:
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
