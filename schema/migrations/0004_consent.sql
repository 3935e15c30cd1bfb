-- Consent (docs/CONSENT.md): the two side tables of the consent ledger.
-- The ledger itself is the `consents` table (0001); the permission to send
-- is derived from it on every check and never stored.
--
-- consent_tokens: one row per double opt-in confirmation token. Only the
-- SHA-256 of the token is kept, so a copy of the database cannot confirm
-- anything; used_ms makes a token single-use (a replay is refused).
CREATE TABLE consent_tokens (
    token_hash TEXT PRIMARY KEY,                         -- SHA-256 of the token, lower-case hex
    consent_id TEXT NOT NULL REFERENCES consents (id),   -- the pending record it confirms
    created_ms INTEGER NOT NULL,                         -- Unix milliseconds
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER                                   -- NULL until confirmed
) STRICT;
CREATE INDEX consent_tokens_consent ON consent_tokens (consent_id);

-- suppressions: addresses that must not receive marketing on a channel, as
-- HMAC-SHA-256 (node key) of the normalized address (e-mail lower-cased,
-- phone in E.164). Keyed by the address, not the contact, so an entry
-- outlives the contact's erasure and blocks a re-import under a new id.
-- purpose '*' covers every purpose (erasure, unsubscribe from all).
CREATE TABLE suppressions (
    hash       TEXT NOT NULL,                            -- lower-case hex
    channel    TEXT NOT NULL,
    purpose    TEXT NOT NULL DEFAULT '*',
    created_ms INTEGER NOT NULL,
    reason     TEXT NOT NULL,                            -- "withdrawn", "erased"; never the person
    PRIMARY KEY (hash, channel, purpose)
) STRICT;
