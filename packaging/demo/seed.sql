-- Demo data for the chat schema (schema.sql): 20,000 users, 5,000 conversations,
-- ~63,000 participants, 40,000 messages over the last 90 days. Deterministic
-- (setseed), runs as chat_app, a few seconds on 2 cores.
--
-- Participants are a formula, not a random draw, so a message's sender can be picked
-- among its conversation's members without a join:
--   member j (0 <= j < participant_count(c)) of conversation c is user
--   ((c * 7919 + j * 4729) % 20000) + 1; 4729 is coprime to 20000, so members differ.
-- Message traffic is skewed (random()^2): low conversation ids are the busy ones, as
-- workload/*.sql assume.

\set ON_ERROR_STOP on
SELECT setseed(0.4242);

CREATE FUNCTION pg_temp.participant_count(c bigint) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN c % 10 < 4 THEN 2                        -- direct
        WHEN c % 10 < 9 THEN 3 + (c * 37 % 18)::int   -- group: 3..20
        ELSE 40 + (c * 53 % 41)::int                  -- channel: 40..80
    END
$$;

CREATE FUNCTION pg_temp.member(c bigint, j int) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (c * 7919 + j * 4729) % 20000 + 1
$$;

INSERT INTO users (id, username, email, display_name, status, created_at, last_seen_at)
SELECT g,
       'user' || g,
       'user' || g || '@example.chat',
       (ARRAY['Ada', 'Grace', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances',
              'Edsger', 'Radia', 'Guido', 'Hedy', 'Alan', 'Katherine', 'Donald', 'Sophie',
              'Niklaus', 'Jean', 'Tim', 'Anita'])[1 + g % 20]
           || ' ' ||
       (ARRAY['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Thompson', 'Liskov', 'Ritchie',
              'Allen', 'Dijkstra', 'Perlman', 'Rossum', 'Lamarr', 'Turing', 'Johnson',
              'Knuth', 'Wilson', 'Wirth', 'Bartik', 'Berners-Lee', 'Borg', 'Kay', 'Backus',
              'Goldberg', 'Stonebraker', 'Gray'])[1 + (g / 20) % 25],
       (ARRAY['online', 'away', 'offline', 'offline', 'offline'])[1 + (random() * 4)::int],
       now() - interval '400 days' + random() * interval '280 days',
       now() - random() * interval '30 days'
FROM generate_series(1, 20000) AS g;

INSERT INTO conversations (id, kind, title, created_by, created_at)
SELECT c,
       k.kind,
       CASE k.kind
           WHEN 'direct' THEN NULL
           WHEN 'group' THEN
               (ARRAY['Book club', 'Weekend hike', 'Release planning', 'Family', 'Flatmates',
                      'Football', 'Study group', 'Road trip'])[1 + c % 8] || ' ' || c
           ELSE '#' || (ARRAY['general', 'random', 'engineering', 'support', 'announcements',
                              'design'])[1 + c % 6] || '-' || c
       END,
       pg_temp.member(c, 0),
       now() - interval '120 days' + random() * interval '29 days'
FROM generate_series(1, 5000) AS c,
     LATERAL (SELECT CASE WHEN c % 10 < 4 THEN 'direct'
                          WHEN c % 10 < 9 THEN 'group'
                          ELSE 'channel' END AS kind) AS k;

INSERT INTO conversation_participants (conversation_id, user_id, role, joined_at, muted)
SELECT c.id,
       pg_temp.member(c.id, j),
       CASE WHEN j = 0 AND c.kind <> 'direct' THEN 'owner'
            WHEN j < 3 AND c.kind = 'channel' THEN 'admin'
            ELSE 'member' END,
       c.created_at + (j * interval '7 minutes'),
       random() < 0.05
FROM conversations AS c,
     generate_series(0, pg_temp.participant_count(c.id) - 1) AS j;

INSERT INTO messages (id, conversation_id, sender_id, kind, body, sent_at, edited_at, deleted_at)
SELECT s.i,
       s.cid,
       pg_temp.member(s.cid, floor(s.r * pg_temp.participant_count(s.cid))::int),
       CASE WHEN s.k < 0.95 THEN 'text' WHEN s.k < 0.98 THEN 'image'
            WHEN s.k < 0.995 THEN 'file' ELSE 'system' END,
       (ARRAY['hey!', 'on my way', 'sounds good to me', 'can you review my PR?',
              'lunch at noon?', 'the build is green again', 'who has the keys?',
              'I will be 10 minutes late, sorry', 'thanks a lot', 'see you tomorrow',
              'did anyone see the alert from last night?', 'yes', 'no', 'ok',
              'let me check and get back to you', 'photo from the trip',
              'meeting moved to 3pm', 'happy birthday!!', 'good morning everyone',
              'the database looks slow today'])[1 + (random() * 19)::int]
           || CASE WHEN random() < 0.3
                   THEN ' ' || repeat('lorem ipsum dolor sit amet ', 1 + (random() * 5)::int)
                   ELSE '' END,
       s.sent_at,
       CASE WHEN s.k2 < 0.03 THEN s.sent_at + random() * interval '10 minutes' END,
       CASE WHEN s.k2 > 0.995 THEN s.sent_at + random() * interval '1 day' END
FROM (SELECT i,
             1 + floor(5000 * power(random(), 2))::bigint AS cid,
             random() AS r,
             random() AS k,
             random() AS k2,
             now() - interval '90 days' + (i / 40000.0) * interval '90 days' AS sent_at
      FROM generate_series(1, 40000) AS i) AS s;

UPDATE conversations AS c
SET last_message_at = m.last_sent_at
FROM (SELECT conversation_id, max(sent_at) AS last_sent_at
      FROM messages GROUP BY conversation_id) AS m
WHERE m.conversation_id = c.id;

-- Most members have read up to the latest message; about one in five has unread ones.
UPDATE conversation_participants AS p
SET last_read_message_id = m.last_id,
    last_read_at = m.last_sent_at + random() * interval '2 hours'
FROM (SELECT conversation_id, max(id) AS last_id, max(sent_at) AS last_sent_at
      FROM messages GROUP BY conversation_id) AS m
WHERE m.conversation_id = p.conversation_id
  AND random() < 0.8;

-- Explicit ids above bypassed the identity sequences; move them past the data.
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
SELECT setval(pg_get_serial_sequence('conversations', 'id'), (SELECT max(id) FROM conversations));
SELECT setval(pg_get_serial_sequence('messages', 'id'), (SELECT max(id) FROM messages));

-- Vacuumed as well as analyzed: the UPDATE above left ~40 % of conversation_participants
-- dead, which a database in steady state (autovacuum, dbpulse's maintenance) does not
-- carry, and which PostgresDeadTuplesHigh would rightly report.
VACUUM (ANALYZE) users, conversations, conversation_participants, messages;
