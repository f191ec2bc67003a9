"""The web order form: one quantity field per product of the local view."""

from django import forms

from orders.validation import MAX_NAME, MAX_QTY, PAYMENT_TOKENS

QTY_PREFIX = "qty__"


class OrderForm(forms.Form):
    customer_name = forms.CharField(label="Name", max_length=MAX_NAME)
    customer_email = forms.EmailField(label="Email")
    payment_token = forms.ChoiceField(label="Payment", choices=list(PAYMENT_TOKENS.items()), initial="tok_visa")
    mode = forms.ChoiceField(
        label="Mode", initial="event", required=False,
        choices=[("event", "event-driven (publish and return at once)"),
                 ("command", "command-driven (orders waits for each context)")],
    )

    def __init__(self, *args, products=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.products = list(products)
        for product in self.products:
            self.fields[QTY_PREFIX + product.sku] = forms.IntegerField(
                label=product.name, min_value=0, max_value=MAX_QTY, required=False,
                widget=forms.NumberInput(attrs={"data-price": f"{product.price:.2f}", "class": "qty"}),
            )

    def rows(self):
        """(product, its quantity field) for the template."""
        return [(p, self[QTY_PREFIX + p.sku]) for p in self.products]

    def lines(self) -> list[dict]:
        return [
            {"sku": name[len(QTY_PREFIX):], "qty": qty}
            for name, qty in self.cleaned_data.items()
            if name.startswith(QTY_PREFIX) and qty
        ]

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Show the service's {field: [messages]} on the matching form fields."""
        fields = {"customer.name": "customer_name", "customer.email": "customer_email", "payment_token": "payment_token"}
        lines = self.lines()
        for key, messages in errors.items():
            field = fields.get(key)
            if field is None and key.startswith("lines[") and key.endswith(".qty"):
                index = int(key[len("lines["):key.index("]")])
                field = QTY_PREFIX + lines[index]["sku"] if index < len(lines) else None
            for message in messages:
                self.add_error(field, message if field else f"{key}: {message}" if key != "lines" else message)
