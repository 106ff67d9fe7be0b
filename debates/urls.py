"""URLs of the debates REST API."""

from django.urls import path

from debates import api

app_name = "debates"

urlpatterns = [
    path("debates/", api.DebateListCreateApi.as_view(), name="debate-list"),
    path("debates/<str:pk>/", api.DebateDetailApi.as_view(), name="debate-detail"),
]
