#pragma once
// The integration-test harness in one include: real servers on free loopback ports, the
// dbpulse binary as a child process, HTTP and exposition helpers. See each header.

#include "integration/harness/child_process.h"      // IWYU pragma: export
#include "integration/harness/dbpulse_process.h"    // IWYU pragma: export
#include "integration/harness/exposition.h"         // IWYU pragma: export
#include "integration/harness/harness_error.h"      // IWYU pragma: export
#include "integration/harness/http_client.h"        // IWYU pragma: export
#include "integration/harness/metric_names.h"       // IWYU pragma: export
#include "integration/harness/net.h"                // IWYU pragma: export
#include "integration/harness/os_user.h"            // IWYU pragma: export
#include "integration/harness/pg_server.h"          // IWYU pragma: export
#include "integration/harness/poll.h"               // IWYU pragma: export
#include "integration/harness/prometheus_server.h"  // IWYU pragma: export
#include "integration/harness/redis_server.h"       // IWYU pragma: export
#include "integration/harness/require.h"            // IWYU pragma: export
#include "integration/harness/shared_servers.h"     // IWYU pragma: export
#include "integration/harness/temp_dir.h"           // IWYU pragma: export
