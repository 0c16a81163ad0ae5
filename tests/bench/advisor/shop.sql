-- E-commerce: customers, products, orders, order items. Sizes are modest (about 1.3 M rows
-- in all) so that loading takes seconds; the planted scans still cost tens of milliseconds.
CREATE TABLE countries (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO countries SELECT g, 'country ' || g FROM generate_series(1, 60) g;

CREATE TABLE customers (
  id int PRIMARY KEY,
  email text NOT NULL,
  name text NOT NULL,
  country_id int NOT NULL,
  created_at timestamptz NOT NULL
);
INSERT INTO customers
SELECT g, 'User' || g || '@Example.com', 'customer ' || g, 1 + g % 60,
       timestamptz '2024-01-01' + g * interval '5 minutes'
FROM generate_series(1, 100000) g;

CREATE TABLE products (
  id int PRIMARY KEY,
  sku text NOT NULL,
  name text NOT NULL,
  category_id int NOT NULL,
  price numeric(10, 2) NOT NULL
);
INSERT INTO products
SELECT g, 'SKU' || lpad(g::text, 6, '0'), 'product ' || g, 1 + g % 40, 1 + (g % 500)
FROM generate_series(1, 60000) g;
-- Trap (unused): an index no statement uses.
CREATE INDEX products_price_idx ON products (price);

CREATE TABLE orders (
  id int PRIMARY KEY,
  customer_id int NOT NULL,
  status text NOT NULL,
  is_gift boolean NOT NULL,
  coupon_code text,
  external_ref text NOT NULL,
  created_at timestamptz NOT NULL,
  total numeric(12, 2) NOT NULL
);
INSERT INTO orders
SELECT g, 1 + (g::bigint * 7919) % 100000,
       (ARRAY['paid', 'shipped', 'delivered', 'refunded'])[1 + g % 4],
       g % 20 <> 0,                                       -- 95 % gifts: an index is useless
       CASE WHEN g % 50 = 0 THEN 'C' || (g / 50) % 2000 END,
       'ext-' || md5(g::text),
       timestamptz '2024-01-01' + g * interval '90 seconds',
       (g % 1000) + 0.99
FROM generate_series(1, 300000) g;
-- Trap (already indexed): lookups by customer are served.
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
-- Trap (duplicate): the same index twice.
CREATE INDEX orders_customer_id_dup ON orders (customer_id);

CREATE TABLE order_items (
  id bigint PRIMARY KEY,
  order_id int NOT NULL,
  product_id int NOT NULL,
  qty int NOT NULL,
  price numeric(10, 2) NOT NULL
);
INSERT INTO order_items
SELECT g, 1 + (g - 1) / 3, 1 + (g::bigint * 104729) % 60000, 1 + g % 9, 1 + (g % 500)
FROM generate_series(1, 900000) g;

-- Trap (invalid): a unique index built concurrently on duplicate data is left INVALID.
-- (CONCURRENTLY cannot run in a transaction block; the loader runs this file with psql
-- in autocommit mode and ON_ERROR_STOP off for this one statement.)
CREATE TABLE order_notes (id int, order_id int NOT NULL, note text);
INSERT INTO order_notes SELECT g, 1 + g % 1000, 'note' FROM generate_series(1, 5000) g;
