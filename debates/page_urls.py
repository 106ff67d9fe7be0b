"""URLs of the HTML pages."""

from django.urls import path
from django.views.generic import RedirectView

from debates import views

app_name = "pages"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="pages:debate-list"), name="home"),
    path("signin/", views.signin, name="signin"),
    path("debates/", views.debate_list, name="debate-list"),
    path("debates/<uuid:pk>/", views.debate_watch, name="debate-watch"),
    # The token follows a '#', so it never reaches the server or its logs.
    path("shared/", views.shared_watch, name="shared-watch"),
    path("track-record/", views.track_record, name="track-record"),
]
