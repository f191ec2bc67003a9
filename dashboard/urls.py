from django.urls import path

from dashboard import catalog_views, control_views, edges, replay, timeseries, views

app_name = "dashboard"
urlpatterns = [
    path("", views.graph_page, name="graph"),
    path("events/", views.log_page, name="event-log"),
    path("catalog/", catalog_views.catalog_page, name="catalog"),
    path("catalog/restock/", catalog_views.restock_demo_catalog, name="catalog-restock"),
    path("api/asyncapi.json", catalog_views.api_asyncapi, name="api-asyncapi"),
    path("api/timeseries/", timeseries.api_timeseries, name="api-timeseries"),
    path("api/edges/", edges.api_edges, name="api-edges"),
    path("api/replay/", replay.api_replay, name="api-replay"),
    path("orders/<uuid:order_id>/", views.trace_page, name="order-trace"),  # a UUID: never orders/new/
    path("api/events/", views.api_events, name="api-events"),
    path("api/events/<str:event_id>/", views.api_event_detail, name="api-event-detail"),
    path("api/traces/<str:order_id>/", views.api_trace, name="api-trace"),
    path("api/contexts/", views.api_contexts, name="api-contexts"),
    path("api/contexts/<str:name>/pause", control_views.context_pause, name="api-context-pause"),
    path("api/contexts/<str:name>/resume", control_views.context_resume, name="api-context-resume"),
    path("api/contexts/<str:name>/detach", control_views.context_detach, name="api-context-detach"),
    path("api/contexts/<str:name>/attach", control_views.context_attach, name="api-context-attach"),
    path("api/comparison/", control_views.comparison, name="api-comparison"),
    path("api/flags/<str:name>", control_views.flag, name="api-flag"),
    path("api/dead-letters/", control_views.dead_letters, name="api-dead-letters"),
    path("api/dead-letters/<str:context>/<int:letter_id>/retry", control_views.dead_letter_retry,
         name="api-dead-letter-retry"),
    path("healthz", views.healthz, name="healthz"),
]
