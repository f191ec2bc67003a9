from django.contrib import admin
from django.urls import include, path

from eventbus.telemetry import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    # Each context names its URLs in its own namespace ("orders:new", "dashboard:order-trace");
    # their paths do not overlap, so the order of these includes does not matter.
    path("", include("orders.urls")),
    path("", include("dashboard.urls")),
]
