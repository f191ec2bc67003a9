from django.urls import path

from orders import views

app_name = "orders"
urlpatterns = [
    path("orders/new/", views.order_new, name="new"),
    path("api/products/", views.api_products, name="api-products"),
    path("api/orders/", views.api_orders, name="api-orders"),
    path("api/orders/<str:order_id>/", views.api_order_detail, name="api-order-detail"),
]
