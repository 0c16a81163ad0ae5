#include "integration/harness/advisor_fixture.h"

#include "integration/harness/pg_server.h"

namespace dbpulse::testing {

void plantMissingIndexCase(PgServer& pg, std::string_view db) {
  pg.exec(
      "DROP TABLE IF EXISTS messages; CREATE TABLE messages (id bigserial PRIMARY KEY, "
      "conversation_id int NOT NULL, sender_id int NOT NULL, body text NOT NULL, "
      "created_at timestamptz NOT NULL DEFAULT now()); INSERT INTO messages "
      "(conversation_id, sender_id, body, created_at) SELECT g % 500, g % 97, 'hello', "
      "now() - g * interval '1 second' FROM generate_series(1, 60000) g; "
      "CREATE INDEX messages_sender ON messages (sender_id); "
      "CREATE INDEX messages_sender_time ON messages (sender_id, created_at); "
      "ANALYZE messages",
      db);
  pg.exec("SELECT pg_stat_statements_reset()", db);
  for (int i = 0; i < 5; ++i) pg.exec(kAdvisorChatQuery, db);
}

}  // namespace dbpulse::testing
