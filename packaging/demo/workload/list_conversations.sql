-- The sidebar: a user's 20 most recently active conversations with unread flags.
\set uid random(1, 20000)
SELECT c.id, c.kind, c.title, c.last_message_at, p.muted,
       p.last_read_at IS NULL OR p.last_read_at < c.last_message_at AS has_unread
FROM conversation_participants AS p
JOIN conversations AS c ON c.id = p.conversation_id
WHERE p.user_id = :uid
ORDER BY c.last_message_at DESC NULLS LAST
LIMIT 20;
