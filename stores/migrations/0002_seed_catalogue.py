"""Seed the store products with the original service's catalogue: Google Play credits_100 /
_250 / _600 (99, 249 and 599 uses), the App Store's ai.ciris.mobile.credits_*_v1 (the same),
and the Play tool pack web_search_10 (10 web searches). Staff edit them in the admin after."""

from django.db import migrations

CREDIT_PACKS = {"credits_100": 99, "credits_250": 249, "credits_600": 599}


def seed(apps, schema_editor):
    StoreProduct = apps.get_model("stores", "StoreProduct")
    ToolProduct = apps.get_model("tools", "ToolProduct")
    for product_id, uses in CREDIT_PACKS.items():
        # get_or_create on the unique (store, product_id): a product staff changed stays as it is.
        StoreProduct.objects.get_or_create(
            store="google_play", product_id=product_id, defaults={"grants": "credit", "uses": uses}
        )
        StoreProduct.objects.get_or_create(
            store="app_store",
            product_id=f"ai.ciris.mobile.{product_id}_v1",
            defaults={"grants": "credit", "uses": uses},
        )
    web_search = ToolProduct.objects.filter(product_type="web_search").first()
    if web_search is not None:
        StoreProduct.objects.get_or_create(
            store="google_play",
            product_id="web_search_10",
            defaults={"grants": "tool", "uses": 10, "tool": web_search},
        )


class Migration(migrations.Migration):
    dependencies = [("stores", "0001_store_purchases"), ("tools", "0002_seed_web_search")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
