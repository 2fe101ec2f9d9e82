"""The campaigns section of the admin home page (crm.admin.home.home_section): broadcasts
sending or waiting, the latest ones' results as a chart, journeys running, paused sends under
"needs attention"."""

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse

from campaigns.selectors.home import campaigns_home
from crm.admin.home import home_section
from crm.admin.home_charts import hbars
from crm.models import Workspace


def _rate(hits: int, sent: int) -> float:
    return hits / sent if sent else 0.0


def _results_chart(results: list[dict]) -> str:
    rows = []
    for c in results:
        sent = c["sent"]
        rows.append(
            (
                c["name"],
                _rate(c["clicked"], sent),
                f"{sent:,} sent · {_rate(c['opened'], sent):.0%} opened · "
                f"{_rate(c['clicked'], sent):.0%} clicked",
            )
        )
    return hbars(rows, title="Latest campaigns: share clicked", css="campaign-results")


@home_section
def campaigns_section(request: HttpRequest, workspace: Workspace) -> dict:
    data = campaigns_home(workspace=workspace)
    change = "admin:campaigns_campaign_change"
    results = [
        {**c, "url": reverse(change, args=[c["id"]]), "rates": {
            k: _rate(c[k], c["sent"]) for k in ("opened", "clicked", "converted")
        }}
        for c in data["results"]
    ]  # fmt: skip
    running = [{**c, "url": reverse(change, args=[c["id"]])} for c in data["campaigns"]]
    journeys = [
        {**j, "url": reverse("admin:campaigns_journey_change", args=[j["id"]])}
        for j in data["journeys"]
    ]
    attention = [
        {"text": f"Campaign “{c['name']}” is paused", "url": c["url"]}
        for c in running
        if c["status"] == "paused"
    ] + [
        {"text": f"Journey “{j['name']}” is paused", "url": j["url"]}
        for j in journeys
        if j["status"] == "paused"
    ]
    html = render_to_string(
        "admin/campaigns/home_section.html",
        {
            "results": results,
            "chart": _results_chart(data["results"]),
            "running": running,
            "journeys": journeys,
            "campaigns_url": reverse("admin:campaigns_campaign_changelist"),
            "journeys_url": reverse("admin:campaigns_journey_changelist"),
        },
        request=request,
    )
    return {"html": html, "attention": attention}
