-- One credit check's SQL: the account by identity (what the service runs, column for column).
\set n random(1, 10000)
SELECT id, tenant_id, oauth_provider, external_id, wa_id, email, status, status_reason, currency, balance_minor, free_uses_remaining, total_uses, has_paid, created_at, updated_at FROM accounts_account WHERE tenant_id = '' AND oauth_provider = 'oauth:google' AND external_id = 'bench-' || :n || '@example.com' ORDER BY created_at DESC LIMIT 1;
