"""Load test with Locust, like the integration guide's, for those who prefer it to `make bench`.

    pip install locust==2.47.0
    BILLING_API_KEY=<key with read,write> locust -f locustfile.py --host http://localhost:8000

Each simulated agent user checks credit ten times for every charge, with a unique
idempotency key per charge, and retries nothing. With free uses only, charges start
answering 402 after three: fund the users (POST /v1/billing/credits with an admin key) or
set BILLING_FREE_USES high on the server under test. Locust is not a project requirement.
"""

from __future__ import annotations

import os
import uuid

from locust import HttpUser, between, task


class BillingAPIUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.user_id = f"load-test-{uuid.uuid4()}@example.com"
        self.request_count = 0
        self.client.headers.update({"X-API-Key": os.environ.get("BILLING_API_KEY", "")})

    @task(10)  # 10x more credit checks than charges
    def check_credit(self) -> None:
        self.client.post(
            "/v1/billing/credits/check",
            json={
                "oauth_provider": "oauth:google",
                "external_id": self.user_id,
                "context": {"agent_id": "datum", "request_id": f"req-{self.request_count}"},
            },
            name="/v1/billing/credits/check",
        )

    @task(1)
    def create_charge(self) -> None:
        self.request_count += 1
        with self.client.post(
            "/v1/billing/charges",
            json={
                "oauth_provider": "oauth:google",
                "external_id": self.user_id,
                "amount_minor": 100,
                "currency": "USD",
                "description": "Load test charge",
                "idempotency_key": f"load-{self.user_id}-{self.request_count}",
                "metadata": {"request_id": f"req-{self.request_count}"},
            },
            name="/v1/billing/charges",
            catch_response=True,
        ) as response:
            # 402 (free uses spent) is a correct answer, not a failure of the service.
            if response.status_code in (201, 402):
                response.success()
