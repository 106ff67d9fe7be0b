"""URLs of the debates REST API."""

from django.urls import path

from debates import api

app_name = "debates"

urlpatterns = [
    path("debates/", api.DebateListCreateApi.as_view(), name="debate-list"),
    path("debates/<str:pk>/", api.DebateDetailApi.as_view(), name="debate-detail"),
    path("debates/<str:pk>/start/", api.DebateStartApi.as_view(), name="debate-start"),
    path("debates/<str:pk>/cancel/", api.DebateCancelApi.as_view(), name="debate-cancel"),
    path("debates/<str:pk>/pause/", api.DebatePauseApi.as_view(), name="debate-pause"),
    path("debates/<str:pk>/resume/", api.DebateResumeApi.as_view(), name="debate-resume"),
    path("debates/<str:pk>/ask/", api.DebateAskApi.as_view(), name="debate-ask"),
    path("debates/<str:pk>/conclude/", api.DebateConcludeApi.as_view(), name="debate-conclude"),
]
