from django.contrib import admin
from django.urls import include, path

from eventbus.telemetry import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("", include("orders.urls")),
    path("", include("dashboard.urls")),
]
