-- Opening a conversation: its latest 50 messages. There is deliberately no index on
-- messages (conversation_id, sent_at) (see schema.sql), so this is the statement the
-- index advisor should pick.
\set cid random_exponential(1, 5000, 4.0)
SELECT id, sender_id, kind, body, sent_at, edited_at
FROM messages
WHERE conversation_id = :cid AND deleted_at IS NULL
ORDER BY sent_at DESC
LIMIT 50;
