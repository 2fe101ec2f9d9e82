"""DRF fields that hold the API's rules for what serializers accept (crm.validation)."""

from rest_framework import serializers

from crm import validation as v


class JsonField(serializers.JSONField):
    """A JSON field that stores only what every renderer can write back and PostgreSQL's jsonb
    takes: no deeper than validation.MAX_JSON_DEPTH, no NUL, no integer beyond 64 bits."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return v.json_value(value)
        except v.Invalid as exc:
            raise serializers.ValidationError(str(exc)) from None


def id_field(**kwargs) -> serializers.IntegerField:
    """An id in a request body: 1 to bigint, so it can be looked up without overflowing."""
    return serializers.IntegerField(min_value=1, max_value=v.BIGINT, **kwargs)
