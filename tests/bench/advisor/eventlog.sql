-- Multi-tenant event log: tenants, users, events with a JSON payload.
CREATE TABLE tenants (id int PRIMARY KEY, name text NOT NULL, plan text NOT NULL);
INSERT INTO tenants SELECT g, 'tenant ' || g, (ARRAY['free', 'pro', 'team'])[1 + g % 3]
FROM generate_series(1, 200) g;

CREATE TABLE users (
  id int PRIMARY KEY,
  tenant_id int NOT NULL,
  email text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL
);
INSERT INTO users
SELECT g, 1 + g % 200, 'u' || g || '@tenant' || (1 + g % 200) || '.test',
       timestamptz '2024-01-01' + g * interval '1 hour'
FROM generate_series(1, 50000) g;

CREATE TABLE events (
  id bigint PRIMARY KEY,
  tenant_id int NOT NULL,
  user_id int NOT NULL,
  kind text NOT NULL,
  created_at timestamptz NOT NULL,
  payload jsonb NOT NULL
);
INSERT INTO events
SELECT g, 1 + (g * 31) % 200, 1 + (g::bigint * 7919) % 50000,
       CASE WHEN g % 10 < 7 THEN 'page_view'                 -- 70 %: a trap for an index
            ELSE (ARRAY['login', 'logout', 'purchase', 'search', 'share'])[1 + g % 5] END,
       timestamptz '2025-01-01' + g * interval '20 seconds',
       jsonb_build_object('session', 's' || (g / 4), 'path', '/p/' || g % 500)
FROM generate_series(1, 600000) g;
