#pragma once
// The index advisor's planted cases on a real PostgreSQL, shared by the advisor's tests and
// the status page's browser test: a `messages` table of 60,000 rows whose "latest messages
// of a conversation" query scans it sequentially (no index on conversation_id: the missing
// index to suggest), with one index that another covers (the duplicate to drop).

#include <string_view>

namespace dbpulse::testing {

class PgServer;

// The statement that wants (conversation_id, created_at).
inline constexpr const char* kAdvisorChatQuery =
    "SELECT id, sender_id, body FROM messages WHERE conversation_id = 7 ORDER BY created_at "
    "DESC LIMIT 20";
// The index the advisor must suggest for it.
inline constexpr const char* kAdvisorChatIndex =
    "CREATE INDEX CONCURRENTLY ON public.messages (conversation_id, created_at);";

// (Re)creates the table with its indexes in `db`, ANALYZEs it, resets pg_stat_statements
// (the extension must exist) and runs kAdvisorChatQuery five times.
void plantMissingIndexCase(PgServer& pg, std::string_view db);

}  // namespace dbpulse::testing
