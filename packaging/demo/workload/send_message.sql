-- A member of a conversation posts a message; the conversation list is re-sorted by
-- last_message_at. Busy conversations are the low ids (as in seed.sql).
\set cid random_exponential(1, 5000, 4.0)
\set len random(1, 6)
BEGIN;
INSERT INTO messages (conversation_id, sender_id, body)
SELECT :cid, user_id, repeat('new message ', :len)
FROM conversation_participants
WHERE conversation_id = :cid
ORDER BY random()
LIMIT 1;
UPDATE conversations SET last_message_at = now() WHERE id = :cid;
COMMIT;
