-- A member reads a conversation up to its newest message.
\set cid random_exponential(1, 5000, 4.0)
UPDATE conversation_participants AS p
SET last_read_message_id = (SELECT max(m.id) FROM messages AS m
                            WHERE m.conversation_id = p.conversation_id),
    last_read_at = now()
WHERE p.conversation_id = :cid
  AND p.user_id = (SELECT user_id FROM conversation_participants
                   WHERE conversation_id = :cid ORDER BY random() LIMIT 1);
