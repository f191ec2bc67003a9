"""Make sure the superuser `admin` exists, with EVENTFLOW_ADMIN_PASSWORD when that is set."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Ensure a superuser 'admin'. Its password comes from EVENTFLOW_ADMIN_PASSWORD; without it a new "
        "user gets a generated password printed once, and an existing user keeps its password."
    )

    def handle(self, *args, **options):
        password = os.environ.get("EVENTFLOW_ADMIN_PASSWORD") or None
        users = get_user_model()._default_manager
        user = users.filter(username=USERNAME).first()

        if user is None:
            generated = password is None
            if generated:
                password = secrets.token_urlsafe(12)
            users.create_superuser(username=USERNAME, email="", password=password)
            if generated:
                self.stdout.write(self.style.WARNING(
                    f"\n  Created superuser '{USERNAME}' with password:  {password}\n"
                    "  (shown only this once; set EVENTFLOW_ADMIN_PASSWORD to choose it)\n"
                ))  # fmt: skip
            else:
                self.stdout.write(f"ensure_admin: created superuser '{USERNAME}' with the password from EVENTFLOW_ADMIN_PASSWORD")
            return

        changed = []
        if not (user.is_superuser and user.is_staff and user.is_active):
            user.is_superuser = user.is_staff = user.is_active = True
            changed.append("made an active superuser")
        if password is not None and not user.check_password(password):
            user.set_password(password)
            changed.append("password set from EVENTFLOW_ADMIN_PASSWORD")
        if changed:
            user.save()
            self.stdout.write(f"ensure_admin: superuser '{USERNAME}' exists; {', '.join(changed)}")
        elif password is None:
            self.stdout.write(
                f"ensure_admin: superuser '{USERNAME}' exists; password unchanged "
                "(set EVENTFLOW_ADMIN_PASSWORD to reset it)"
            )
        else:
            self.stdout.write(f"ensure_admin: superuser '{USERNAME}' exists with the password from EVENTFLOW_ADMIN_PASSWORD")
