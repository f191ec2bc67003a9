"""ASGI entry point: Django for HTTP, the Channels router for websockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# This process serves ASGI: the settings give it no persistent database connections.
os.environ["EVENTFLOW_ASGI"] = "1"
# Traces with OTEL_EXPORTER_OTLP_ENDPOINT set; Django's middleware goes in before the app is built.
from eventbus import tracing  # noqa: E402

tracing.setup("web", http=True)
# Build Django's app first: it sets up the apps the websocket routes import.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
