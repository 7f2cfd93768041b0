-- One charge's SQL: replay lookup, then lock, insert the charge, update the balance, insert
-- the ledger entry, in one transaction (what the service runs, statement for statement).
\set n random(1, 10000)
\set k random(1, 1000000000000)
SELECT c.id, c.amount_minor FROM charges_charge c JOIN accounts_account a ON c.account_id = a.id WHERE a.tenant_id = '' AND a.oauth_provider = 'oauth:google' AND a.external_id = 'bench-' || :n || '@example.com' AND c.idempotency_key = 'pgbench-' || :client_id || '-' || :k ORDER BY c.created_at DESC LIMIT 1;
BEGIN;
SELECT id AS acct, balance_minor AS bal, free_uses_remaining AS fu, total_uses AS tu FROM accounts_account WHERE tenant_id = '' AND oauth_provider = 'oauth:google' AND external_id = 'bench-' || :n || '@example.com' ORDER BY created_at DESC LIMIT 1 FOR UPDATE \gset
INSERT INTO charges_charge (id, account_id, idempotency_key, amount_minor, currency, description, metadata, paid_with_free_use, debited_minor, balance_after_minor, free_uses_after, actor, created_at) VALUES (gen_random_uuid(), ':acct', 'pgbench-' || :client_id || '-' || :k, 100, 'USD', 'Agent interaction - bench', '{"agent_id": "datum"}', false, 100, :bal - 100, :fu, 'bench', now()) RETURNING id AS charge \gset
UPDATE accounts_account SET balance_minor = :bal - 100, free_uses_remaining = :fu, total_uses = :tu + 1, updated_at = now() WHERE id = ':acct';
INSERT INTO ledger_ledgerentry (account_id, kind, balance_delta_minor, free_uses_delta, balance_after_minor, free_uses_after, currency, charge_id, purchase_id, actor, reason, idempotency_key, request_fingerprint, details, created_at) VALUES (':acct', 'charge', -100, 0, :bal - 100, :fu, 'USD', ':charge', NULL, 'bench', 'Agent interaction - bench', NULL, '', '{}', now()) RETURNING id;
COMMIT;
