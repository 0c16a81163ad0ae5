-- Ticketing / SaaS help desk: organisations, agents, tickets, comments.
CREATE TABLE orgs (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO orgs SELECT g, 'org ' || g FROM generate_series(1, 1000) g;

CREATE TABLE agents (id int PRIMARY KEY, org_id int NOT NULL, name text NOT NULL);
INSERT INTO agents SELECT g, 1 + g % 1000, 'agent ' || g FROM generate_series(1, 5000) g;

CREATE TABLE tickets (
  id int PRIMARY KEY,
  org_id int NOT NULL,
  assignee_id int NOT NULL,
  status text NOT NULL,
  priority int NOT NULL,
  subject text NOT NULL,
  created_at timestamptz NOT NULL,
  closed_at timestamptz
);
INSERT INTO tickets
SELECT g, 1 + (g * 13) % 1000, 1 + (g * 7) % 5000,
       CASE WHEN g % 10 = 0 THEN 'open' ELSE 'closed' END,  -- 10 % open
       1 + g % 4,                                             -- four priorities: a trap
       (ARRAY['Refund', 'Login', 'Billing', 'Bug', 'Feature'])[1 + g % 5] || ' ' || g,
       now() - interval '730 days' + g * interval '210 seconds',
       CASE WHEN g % 10 = 0 THEN NULL ELSE now() - interval '700 days' + g * interval '210 seconds' END
FROM generate_series(1, 300000) g;

CREATE TABLE comments (
  id bigint PRIMARY KEY,
  ticket_id int NOT NULL,
  author_id int NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL
);
-- Every ticket but one in 20 has comments (the rest are what the anti-join looks for).
INSERT INTO comments
SELECT g, t, 1 + (g * 17) % 5000, 'comment ' || g, now() - interval '700 days' + g * interval '70 seconds'
FROM generate_series(1, 900000) g, LATERAL (SELECT 1 + (g - 1) / 3 AS t) x
WHERE t % 20 <> 0;

CREATE TABLE priorities (id int, name text NOT NULL);  -- tiny, no key: a trap
INSERT INTO priorities VALUES (1, 'low'), (2, 'normal'), (3, 'high'), (4, 'urgent');
