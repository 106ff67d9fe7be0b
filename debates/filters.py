"""List filters for the debates API."""

import django_filters

from debates.models import Debate, DebateStatus


class DebateFilter(django_filters.FilterSet):
    """Filter debates by status and asset (case-insensitive)."""

    status = django_filters.ChoiceFilter(choices=DebateStatus.choices)
    asset = django_filters.CharFilter(field_name="asset", lookup_expr="iexact")

    class Meta:
        model = Debate
        fields = ["status", "asset"]
