"""GET /api/v1/forecasts: one series' actuals and its forecast (mean, 80% band, the parts it is
made of) from the key's workspace's active forecast version, with how that version did on its
backtest."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.base import WorkspaceApi
from crm.models.forecasts import Frequency, Measure
from crm.selectors import forecasts as selectors

PARAMETERS = [
    OpenApiParameter(
        "series",
        str,
        OpenApiParameter.QUERY,
        description="total (default), country:<code>, product:<sku> or group:<number>",
    ),
    OpenApiParameter(
        "measure", str, OpenApiParameter.QUERY, enum=Measure.values, description="default units"
    ),
    OpenApiParameter(
        "frequency",
        str,
        OpenApiParameter.QUERY,
        enum=Frequency.values,
        description="week (default; weeks start on Monday) or day (the total and countries)",
    ),
]


class ForecastApi(WorkspaceApi):
    read_scope = write_scope = "crm:read"

    @extend_schema(
        parameters=PARAMETERS,
        responses=OpenApiTypes.OBJECT,
        summary="A series' history and forecast with its 80% band and reasons",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        try:
            body = selectors.forecast_series(
                self.workspace.pk,
                series=params.get("series", "total"),
                measure=params.get("measure", Measure.UNITS),
                frequency=params.get("frequency", Frequency.WEEK),
            )
        except selectors.SeriesError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        return Response(body)
