"""URLs of the debates REST API."""

from django.urls import path

from debates import api

app_name = "debates"

urlpatterns = [
    path("debates/", api.DebateListCreateApi.as_view(), name="debate-list"),
    path("debates/<str:pk>/", api.DebateDetailApi.as_view(), name="debate-detail"),
    path("debates/<str:pk>/start/", api.DebateStartApi.as_view(), name="debate-start"),
    path("track-record/", api.TrackRecordApi.as_view(), name="track-record"),
    path("debates/<str:pk>/cancel/", api.DebateCancelApi.as_view(), name="debate-cancel"),
    path("debates/<str:pk>/export/", api.DebateExportApi.as_view(), name="debate-export"),
    path(
        "debates/<str:pk>/share-links/",
        api.DebateShareLinksApi.as_view(),
        name="debate-share-links",
    ),
    path(
        "debates/<str:pk>/share-links/<int:link_id>/",
        api.DebateShareLinkApi.as_view(),
        name="debate-share-link",
    ),
    path("shared/debate/", api.SharedDebateApi.as_view(), name="shared-debate"),
    path("shared/export/", api.SharedDebateExportApi.as_view(), name="shared-export"),
    path("debates/<str:pk>/pause/", api.DebatePauseApi.as_view(), name="debate-pause"),
    path("debates/<str:pk>/resume/", api.DebateResumeApi.as_view(), name="debate-resume"),
    path("debates/<str:pk>/ask/", api.DebateAskApi.as_view(), name="debate-ask"),
    path("debates/<str:pk>/conclude/", api.DebateConcludeApi.as_view(), name="debate-conclude"),
    path("debates/<str:pk>/vote/", api.DebateVoteApi.as_view(), name="debate-vote"),
]
