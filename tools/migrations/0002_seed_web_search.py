"""Seed the web_search product with the original service's allowance: 10 free uses, 3 more a
UTC day, capped at 13. Its price is left empty, so it follows BILLING_USE_PRICE_MINOR (one
search costs what one interaction costs) until staff set one in the admin."""

from django.db import migrations

WEB_SEARCH = {
    "name": "Web search",
    "price_minor": None,
    "free_initial": 10,
    "free_daily_topup": 3,
    "free_cap": 13,
    "active": True,
}


def seed_web_search(apps, schema_editor):
    ToolProduct = apps.get_model("tools", "ToolProduct")
    # get_or_create on the unique product_type: a product staff already made stays as it is.
    ToolProduct.objects.get_or_create(product_type="web_search", defaults=WEB_SEARCH)


class Migration(migrations.Migration):
    dependencies = [("tools", "0001_tool_credits")]

    operations = [migrations.RunPython(seed_web_search, migrations.RunPython.noop)]
