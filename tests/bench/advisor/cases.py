"""The advisor benchmark's planted cases: for each schema, the workload (pgbench scripts),
the creates a right answer contains, the traps where no index is right, and the drops.

A create case lists the index definitions that count as right (`accept`, as written inside
CREATE INDEX's parentheses) and `timing`, a statement with real values that the runner
times with and without the first accepted index, built for real (beside the indexes in
`with`, for the half of a pair). A suggestion is matched on
its table and its parenthesised column list, with its INCLUDE list if any (case, spaces,
quotes and parentheses ignored; a covering answer is written "a) INCLUDE (b").
Suggestions that match no create case of their schema are wrong (they lower precision);
those that match an `acceptable` entry are neither right nor wrong (a defensible index
that is not the planted answer).
"""

# pgbench scripts use the extended protocol (-M extended), so pg_stat_statements records
# them with $n parameters, as an application's driver would. \gset picks string values.

SCHEMAS = [
    {
        "name": "shop",
        "title": "e-commerce",
        "sql": "shop.sql",
        "after_load": [
            # An INVALID index: a unique index built concurrently on duplicate values.
            "CREATE UNIQUE INDEX CONCURRENTLY order_notes_order_uniq ON order_notes (order_id)",
        ],
        "creates": [
            {
                "id": "shop-join-key",
                "kind": "join key (hash join inner side)",
                "table": "order_items",
                "accept": ["order_id", "order_id, qty", "order_id, product_id"],
                "script": "\\set cid random(1, 100000)\n"
                "SELECT o.id, sum(oi.qty) FROM orders o JOIN order_items oi ON oi.order_id = o.id "
                "WHERE o.customer_id = :cid GROUP BY o.id;\n",
                "timing": "SELECT o.id, sum(oi.qty) FROM orders o JOIN order_items oi "
                "ON oi.order_id = o.id WHERE o.customer_id = 4242 GROUP BY o.id",
            },
            {
                "id": "shop-expression",
                "kind": "expression (lower(email))",
                "table": "customers",
                "accept": ["lower(email)"],
                "script": "\\set n random(1, 100000)\n"
                "SELECT id, name FROM customers WHERE lower(email) = lower('User' || :n::text || '@example.com');\n",
                "timing": "SELECT id, name FROM customers WHERE lower(email) = lower('User4242@example.com')",
            },
            {
                "id": "shop-like-prefix",
                "kind": "LIKE 'prefix%' (text_pattern_ops)",
                "table": "products",
                "accept": ["sku text_pattern_ops"],
                "script": "SELECT 'SKU0' || (1000 + (random() * 4999)::int) || '%' AS pat \\gset\n"
                "SELECT id, name FROM products WHERE sku LIKE :pat;\n",
                "timing": "SELECT id, name FROM products WHERE sku LIKE 'SKU04242%'",
            },
            {
                "id": "shop-in-list",
                "kind": "IN list",
                "table": "orders",
                "accept": ["external_ref"],
                "script": "\\set a random(1, 300000)\n\\set b random(1, 300000)\n"
                "SELECT id, total FROM orders WHERE external_ref IN (md5(:a::text), md5(:b::text));\n",
                "timing": "SELECT id, total FROM orders WHERE external_ref IN "
                "('ext-' || md5('4242'), 'ext-' || md5('777'))",
            },
            {
                "id": "shop-pair",
                "kind": "index pair (filter + join key)",
                "table": "orders",
                "accept": ["coupon_code"],
                "with": ["order_items (order_id)"],  # the pair's other half, shop-join-key
                "script": "\\set c random(0, 1999)\n"
                "SELECT o.id, count(oi.id) FROM orders o JOIN order_items oi ON oi.order_id = o.id "
                "WHERE o.coupon_code = 'C' || :c::text GROUP BY o.id;\n",
                "timing": "SELECT o.id, count(oi.id) FROM orders o JOIN order_items oi "
                "ON oi.order_id = o.id WHERE o.coupon_code = 'C42' GROUP BY o.id",
            },
        ],
        "traps": [
            {
                "id": "shop-low-selectivity",
                "kind": "low selectivity (95 % true)",
                "script": "SELECT count(*), sum(total) FROM orders WHERE is_gift;\n",
            },
            {
                "id": "shop-already-indexed",
                "kind": "already indexed",
                "script": "\\set cid random(1, 100000)\n"
                "SELECT id, status, total FROM orders WHERE customer_id = :cid;\n",
            },
            {
                "id": "shop-tiny-table",
                "kind": "tiny table",
                "script": "\\set k random(1, 60)\nSELECT name FROM countries WHERE name = 'country ' || :k::text;\n",
            },
            {
                "id": "shop-cast",
                "kind": "cast on the column",
                "script": "\\set cid random(1, 100000)\n"
                "SELECT id FROM orders WHERE customer_id::numeric = :cid::numeric;\n",
            },
        ],
        # An index on the cast expression is a defensible answer to the cast trap.
        "acceptable": [{"table": "orders", "accept": ["(customer_id)::numeric", "customer_id::numeric"]}],
        "drops": [
            # Either of the two identical indexes is a right answer.
            {"index": ["orders_customer_id_dup", "orders_customer_id_idx"], "reason": "duplicate"},
            {"index": "order_notes_order_uniq", "reason": "invalid"},
            {"index": "products_price_idx", "reason": "unused"},
        ],
    },
    {
        "name": "eventlog",
        "title": "multi-tenant event log",
        "sql": "eventlog.sql",
        "after_load": [],
        "creates": [
            {
                "id": "events-order-by-limit",
                "kind": "equality + ORDER BY … LIMIT",
                "table": "events",
                "accept": ["tenant_id, created_at"],
                "script": "\\set t random(1, 200)\n"
                "SELECT id, kind FROM events WHERE tenant_id = :t ORDER BY created_at DESC LIMIT 50;\n",
                "timing": "SELECT id, kind FROM events WHERE tenant_id = 42 ORDER BY created_at DESC LIMIT 50",
            },
            {
                "id": "events-json-expression",
                "kind": "expression (payload->>'session')",
                "table": "events",
                "accept": ["(payload ->> 'session'::text)", "payload ->> 'session'"],
                "script": "\\set s random(1, 150000)\n"
                "SELECT id, kind FROM events WHERE payload->>'session' = 's' || :s::text;\n",
                "timing": "SELECT id, kind FROM events WHERE payload->>'session' = 's4242'",
            },
            {
                "id": "events-join-key",
                "kind": "join key (nested loop inner side)",
                "table": "events",
                "accept": ["user_id", "user_id, created_at", "user_id, kind"],
                "script": "\\set u random(1, 50000)\n"
                "SELECT e.kind, count(*) FROM users u JOIN events e ON e.user_id = u.id "
                "WHERE u.email = 'u' || :u::text || '@tenant' || (1 + :u::int % 200)::text || '.test' GROUP BY e.kind;\n",
                "timing": "SELECT e.kind, count(*) FROM users u JOIN events e ON e.user_id = u.id "
                "WHERE u.email = 'u4242@tenant43.test' GROUP BY e.kind",
            },
        ],
        "traps": [
            {
                "id": "events-low-selectivity",
                "kind": "low selectivity (70 % of rows)",
                "script": "SELECT count(*) FROM events WHERE kind = 'page_view';\n",
            },
            {
                "id": "events-tiny-table",
                "kind": "tiny table",
                "script": "SELECT id, name FROM tenants WHERE plan = 'pro';\n",
            },
        ],
        "acceptable": [],
        "drops": [],
    },
    {
        "name": "ticketing",
        "title": "ticketing / SaaS help desk",
        "sql": "ticketing.sql",
        "after_load": [],
        "creates": [
            {
                "id": "tickets-selective-first",
                "kind": "two filters, selective column first",
                "table": "tickets",
                "accept": ["assignee_id", "assignee_id, status"],
                "script": "\\set a random(1, 5000)\n"
                "SELECT id, subject FROM tickets WHERE status = 'open' AND assignee_id = :a;\n",
                "timing": "SELECT id, subject FROM tickets WHERE status = 'open' AND assignee_id = 4242",
            },
            {
                "id": "tickets-anti-join",
                "kind": "anti-join key (NOT EXISTS)",
                "table": "comments",
                "accept": ["ticket_id", "ticket_id, created_at", "ticket_id, author_id"],
                "script": "\\set o random(1, 1000)\n"
                "SELECT t.id FROM tickets t WHERE t.org_id = :o AND NOT EXISTS "
                "(SELECT 1 FROM comments c WHERE c.ticket_id = t.id);\n",
                "timing": "SELECT t.id FROM tickets t WHERE t.org_id = 42 AND NOT EXISTS "
                "(SELECT 1 FROM comments c WHERE c.ticket_id = t.id)",
            },
            {
                "id": "tickets-pair-filter",
                "kind": "index pair (filter beside the anti-join)",
                "table": "tickets",
                # With the table's pages all-visible, the index that also carries the id the
                # anti-join reads (an Index Only Scan) is as right as the plain one.
                "accept": ["org_id", "org_id, created_at", "org_id, status", "org_id) INCLUDE (id"],
                "with": ["comments (ticket_id)"],  # the pair's other half, tickets-anti-join
                "script": None,  # the anti-join statement above
                "timing": "SELECT t.id FROM tickets t WHERE t.org_id = 42 AND NOT EXISTS "
                "(SELECT 1 FROM comments c WHERE c.ticket_id = t.id)",
            },
            {
                "id": "tickets-like-prefix",
                "kind": "LIKE 'prefix%' (text_pattern_ops)",
                "table": "tickets",
                "accept": ["subject text_pattern_ops"],
                "script": "SELECT 'Refund ' || (10000 + (random() * 9000)::int)::text || '%' AS pat \\gset\n"
                "SELECT id, status FROM tickets WHERE subject LIKE :pat;\n",
                "timing": "SELECT id, status FROM tickets WHERE subject LIKE 'Refund 12345%'",
            },
            {
                "id": "comments-any-list",
                "kind": "= ANY (array), covering (INCLUDE)",
                "table": "comments",
                # ~340 rows read for two columns: the Index Only Scan skips their heap pages.
                "accept": ["author_id) INCLUDE (id, ticket_id", "author_id) INCLUDE (ticket_id, id"],
                "script": "\\set a random(1, 5000)\n\\set b random(1, 5000)\n"
                "SELECT id, ticket_id FROM comments WHERE author_id = ANY (ARRAY[:a, :b]::int[]);\n",
                "timing": "SELECT id, ticket_id FROM comments WHERE author_id = ANY (ARRAY[42, 4242])",
            },
            {
                "id": "tickets-interval",
                "kind": "range with interval $n",
                "table": "tickets",
                "accept": ["created_at"],
                "script": "SELECT count(*) FROM tickets WHERE created_at > now() - interval '2 days';\n",
                "timing": "SELECT count(*) FROM tickets WHERE created_at > now() - interval '2 days'",
            },
        ],
        "traps": [
            {
                "id": "tickets-low-selectivity",
                "kind": "low selectivity (four priorities)",
                # Reads a column beside the filter: half the table through an index would
                # be slower than a scan. (A bare count(*) of half the rows is another
                # matter: an Index Only Scan of a small index beats it on a vacuumed table.)
                "script": "\\set p random(1, 4)\n"
                "SELECT max(subject) FROM tickets WHERE priority IN (:p::int, 1 + :p::int % 4);\n",
            },
            {
                "id": "tickets-tiny-table",
                "kind": "tiny table",
                "script": "\\set p random(1, 4)\nSELECT name FROM priorities WHERE id = :p;\n",
            },
        ],
        "acceptable": [],
        "drops": [],
    },
]
