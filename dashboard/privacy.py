"""The dashboard's viewer rules; they live in eventbus.privacy, shared with orders' API
(the import contracts keep contexts from importing each other)."""

from eventbus.privacy import for_viewer, mask_email, mask_name, masked, may_see_emails

__all__ = ["for_viewer", "mask_email", "mask_name", "masked", "may_see_emails"]
