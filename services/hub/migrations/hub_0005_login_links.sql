-- One-time login links the web redeemed (HubService.RedeemLoginLink). The web signs a person in with a
-- token carried in a link and must accept each link once; its replicas and restarts share no memory, so
-- the first use of a token id (jti) is recorded here, where every replica asks. A row is kept until its
-- token expires: past that the token is refused for its age by every service, so the id need not be
-- remembered. History, not a projection: the rebuild carries it over and does not compare it.
-- depends: hub_0003_dashboard hub_0004_order_independence

CREATE TABLE login_links_redeemed (
    token_id    TEXT        PRIMARY KEY,
    -- Who signed in (the token's sub), for an operator reading the table.
    subject     TEXT        NOT NULL,
    redeemed_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_links_redeemed_by_expiry ON login_links_redeemed (expires_at);
