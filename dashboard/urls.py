from django.urls import path

from dashboard import views

urlpatterns = [
    path("api/events/", views.api_events, name="api-events"),
    path("healthz", views.healthz, name="healthz"),
]
