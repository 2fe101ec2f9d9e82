"""OpenAPI shape of GET /campaigns/<id>/stats (documentation only: the answer is the dicts of
campaigns.services.results.campaign_stats and uplift_results, shaped there)."""

from rest_framework import serializers as s


def _interval(what: str) -> s.ListField:
    return s.ListField(
        child=s.FloatField(allow_null=True),
        allow_null=True,
        help_text=f"95% interval of {what}: [low, high]; null where there is nothing to measure",
    )


class StatsRate(s.Serializer):
    count = s.IntegerField()
    rate = s.FloatField(
        allow_null=True,
        help_text="opens and clicks per message sent; conversions per recipient (per message "
        "sent for a variant)",
    )
    ci95 = _interval("the rate (Wilson)")


class StatsGroup(s.Serializer):
    recipients = s.IntegerField(help_text="rows of the ledger in the group")
    sent = s.IntegerField()
    failed = s.IntegerField()
    opens = StatsRate()
    clicks = StatsRate()
    conversions = StatsRate()
    revenue = s.FloatField()
    revenue_per_recipient = s.FloatField(allow_null=True)
    revenue_per_recipient_ci95 = _interval("the revenue per recipient")


class StatsVariant(StatsGroup):
    id = s.IntegerField()
    name = s.CharField()


class StatsLift(s.Serializer):
    compares = s.CharField(
        help_text="which two groups: everyone sent to against the whole holdout, or (a campaign "
        "targeted by uplift) those the targeting selected and sent to against the held-out "
        "members it would have selected"
    )
    treated = s.IntegerField(help_text="members of the sent group")
    control = s.IntegerField(help_text="members of the held-out group")
    conversion_rate = s.FloatField(help_text="sent minus held out")
    conversion_rate_ci95 = _interval("the difference")
    relative = s.FloatField(allow_null=True, help_text="sent / held out - 1")
    relative_ci95 = _interval("the relative lift")
    incremental_conversions = s.FloatField(help_text="the difference x the sent group")
    revenue_per_recipient = s.FloatField()
    revenue_per_recipient_ci95 = _interval("the revenue difference")


class StatsSelected(s.Serializer):
    sent = StatsGroup(help_text="the selected who were sent")
    held_out = StatsGroup(help_text="the held-out members the rule would have selected")


class UpliftDifference(s.Serializer):
    value = s.FloatField()
    ci95 = _interval("the difference (Newcombe)")


class UpliftArm(s.Serializer):
    members = s.IntegerField()
    conversions = s.IntegerField()
    rate = s.FloatField(allow_null=True, help_text="conversions per member, sent or not")
    ci95 = _interval("the rate")
    sent = s.IntegerField()


class UpliftSendingArm(UpliftArm):
    sent_share = s.FloatField(help_text="share of the members sent to")
    incremental_per_send = s.FloatField(
        allow_null=True, help_text="(rate - holdout rate) / sent share"
    )


class UpliftEarned(s.Serializer):
    targeted = UpliftSendingArm(help_text="sent only if selected")
    control_share = UpliftSendingArm(help_text="a random share sent whatever its score")
    holdout = UpliftArm(help_text="none sent")
    targeted_vs_control_share = UpliftDifference(
        allow_null=True, help_text="per member: what targeting gained against sending to all"
    )
    targeted_vs_holdout = UpliftDifference(
        allow_null=True, help_text="per member: what targeting earned against sending to no one"
    )
    control_share_vs_holdout = UpliftDifference(
        allow_null=True, help_text="per member: sending to everyone against no one"
    )
    lift_on_selected = UpliftDifference(
        allow_null=True,
        help_text="the message's effect on those the rule selected: selected and sent against "
        "selected and held out (the headline lift)",
    )


class UpliftQini(s.Serializer):
    rows = s.IntegerField()
    treated = s.IntegerField(help_text="sent (a targeted campaign: its control share)")
    control = s.IntegerField(help_text="held out")
    observed = s.ListField(
        child=s.FloatField(),
        help_text="the observed Qini curve at every 1% of the ranking by the launch's scores "
        "(101 points): extra conversions among the top n",
    )
    predicted = s.ListField(
        child=s.FloatField(), help_text="the curve the model's scores predicted, same points"
    )
    qini = s.FloatField(help_text="Qini coefficient normalised to the best ordering (<= 1)")
    qini_ci95 = _interval("the coefficient (bootstrap)")


class StatsUplift(s.Serializer):
    conversions = s.IntegerField(help_text="among the ranked sent and held-out rows")
    too_few = s.BooleanField(help_text="under 20 conversions: not evidence either way")
    targeted = s.BooleanField()
    rule = s.CharField(help_text="the campaign's targeting")
    scored = s.IntegerField(help_text="rows that carried an uplift score at launch")
    qini = UpliftQini(
        allow_null=True,
        help_text="how the launch's scores ranked who the message changed, on the campaign's "
        "own random comparison; null without both sent and held-out rows with scores",
    )
    earned = UpliftEarned(
        allow_null=True,
        help_text="a targeted campaign only: three random arms per audience member (targeted: "
        "sent if selected; control share: all sent; holdout: none) and the message's effect "
        "on the selected",
    )


class StatsAttribution(s.Serializer):
    goal_event = s.CharField()
    days = s.IntegerField()


class SenderHealth(s.Serializer):
    attempted = s.IntegerField(help_text="sent + refused for good at RCPT")
    sent = s.IntegerField()
    hard_bounces = s.IntegerField(help_text="messages refused at RCPT (5xx) or reported bounced")
    soft_bounces = s.IntegerField()
    complaints = s.IntegerField(help_text="messages a feedback report names")
    bounce_percent = s.FloatField(allow_null=True, help_text="hard bounces per attempted, %")
    complaint_percent = s.FloatField(allow_null=True, help_text="complaints per sent, %")
    complaint_warning = s.BooleanField(help_text="complaints at the workspace's warning rate")
    thresholds = s.DictField(help_text="the workspace's circuit-breaker settings")
    paused_by_breaker = s.DictField(
        allow_null=True, help_text="the circuit breaker's pause in force: reason, figures, when"
    )


class CampaignStats(s.Serializer):
    campaign = s.IntegerField()
    status = s.CharField()
    audience = s.IntegerField()
    queued = s.IntegerField()
    sent = s.IntegerField()
    failed = s.IntegerField()
    skipped = s.DictField(child=s.IntegerField(), help_text="reason -> count")
    bounced = StatsRate(help_text="messages a report says bounced for good, of those sent")
    soft_bounced = StatsRate(help_text="messages a report says were delayed or refused for now")
    complained = StatsRate(help_text="messages reported as spam, of those sent")
    treated = StatsGroup(help_text="everyone sent to (or due)")
    holdout = StatsGroup(allow_null=True, help_text="the whole holdout")
    variants = StatsVariant(many=True)
    lift = StatsLift(allow_null=True, help_text="null until both groups have members")
    selected = StatsSelected(
        allow_null=True,
        help_text="a campaign targeted by uplift: the lift's two groups; null otherwise",
    )
    ab_test = s.DictField(allow_null=True, help_text="how the A/B winner or the waves went")
    attribution = StatsAttribution()
    send_time = s.DictField(
        allow_null=True, help_text="best-hour timing: best hour against random hour"
    )
    uplift = StatsUplift(
        allow_null=True,
        help_text="the campaign's uplift results; null when its launch recorded no uplift "
        "scores (no active model for the goal)",
    )
    sender_health = SenderHealth(
        help_text="bounce and complaint rates, the 0.1% complaint warning, the circuit breaker"
    )
