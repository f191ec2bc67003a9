from django.urls import path, re_path

from dashboard import views

urlpatterns = [
    path("", views.graph_page, name="graph"),
    path("events/", views.log_page, name="event-log"),
    path("orders/<str:order_id>/", views.trace_page, name="order-trace"),
    path("api/events/", views.api_events, name="api-events"),
    path("api/events/<str:event_id>/", views.api_event_detail, name="api-event-detail"),
    path("api/traces/<str:order_id>/", views.api_trace, name="api-trace"),
    path("api/contexts/", views.api_contexts, name="api-contexts"),
    path("healthz", views.healthz, name="healthz"),
    # Daphne serves no static files by itself (only `runserver` does); see views.static_file.
    re_path(r"^static/(?P<path>.+)$", views.static_file, name="static"),
]
