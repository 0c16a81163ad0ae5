#!/usr/bin/env node
// The chat server beside dbpulse in the `make demo` sandbox and in the companion
// integration test: a small chat API on Node's http module, instrumented with prom-client
// under the metric names of DESIGN.md ("The chat server's own metrics").
//
//   node server.js [--host 127.0.0.1] [--port 9471] [--pid-file FILE] [--redis-port N]
//                  [--traffic RATE] [--simulated-latency]
//
// Routes:
//   GET  /health, GET /health/ready    {"status":"ok"}; /health/ready answers 503
//                                      {"status":"unavailable"} while the unready fault is on
//   GET  /metrics                      prom-client's exposition: its default process_* and
//                                      nodejs_* metrics plus the chat metrics below
//   GET  /api/conversations            the conversations, with their message counts
//   GET  /api/conversations/:id/messages
//   POST /api/conversations/:id/messages   {"text": "...", "channel_type": "..."} -> 201
//   GET|POST /_demo/fault?mode=M&seconds=N
//                                      demo knob: M is errors (every 5th API request answers
//                                      500 or 503), slow (API requests take 10x as long, at
//                                      least 1.5 s), unready, or none; N defaults to 300
//
// --traffic RATE: the server sends itself about RATE API requests per second (a slow
// 20-minute wave around it), the demo's chat clients. --simulated-latency: API requests
// wait as if a database answered them (a per-route median with random spread), so the
// latency histograms look like a real backend's. --redis-port: a few session reads and
// writes per second in that Redis, so its hit ratio moves. Without these, requests are
// answered as fast as the in-memory store allows: what the integration test wants.

"use strict";

const http = require("node:http");
const net = require("node:net");
const fs = require("node:fs");
const client = require("prom-client");

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const args = { host: "127.0.0.1", port: 9471, pidFile: "", redisPort: 0, traffic: 0,
                 simulatedLatency: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    const number = (min) => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < min) usage(`${a} must be a number >= ${min}`);
      return v;
    };
    if (a === "--host") args.host = value();
    else if (a === "--port") args.port = number(0);
    else if (a === "--pid-file") args.pidFile = value();
    else if (a === "--redis-port") args.redisPort = number(1);
    else if (a === "--traffic") args.traffic = number(0);
    else if (a === "--simulated-latency") args.simulatedLatency = true;
    else usage(`unknown argument ${a}`);
  }
  return args;
}

function usage(message) {
  process.stderr.write(`chat-server: ${message}\n` +
    "usage: node server.js [--host H] [--port N] [--pid-file F] [--redis-port N] " +
    "[--traffic RATE] [--simulated-latency]\n");
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------- metrics

const register = new client.Registry();
client.collectDefaultMetrics({ register });

const requestsTotal = new client.Counter({
  name: "http_requests_total", help: "Total number of HTTP requests",
  labelNames: ["method", "route", "status_code"], registers: [register],
});
const requestDuration = new client.Histogram({
  name: "http_request_duration_seconds", help: "Duration of HTTP requests in seconds",
  labelNames: ["method", "route"], registers: [register], // prom-client's default buckets
});
let openConnections = 0;
new client.Gauge({
  name: "websocket_active_connections", help: "Open client connections",
  registers: [register], collect() { this.set(openConnections); },
});
const deliveryTime = new client.Histogram({
  name: "message_delivery_time_ms",
  help: "Time from a message being received to its being stored and acknowledged",
  buckets: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000], registers: [register],
});
const messagesSent = new client.Counter({
  name: "messages_sent_total", help: "Messages sent", labelNames: ["channel_type"],
  registers: [register],
});
const cacheHits = new client.Counter({
  name: "cache_hits_total", help: "Application cache hits", registers: [register],
});
const cacheMisses = new client.Counter({
  name: "cache_misses_total", help: "Application cache misses", registers: [register],
});
const dbDuration = new client.Histogram({
  name: "database_query_duration_seconds", help: "Duration of database queries in seconds",
  labelNames: ["operation", "collection"],
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [register],
});

// ---------------------------------------------------------------- faults

let fault = "none";
let faultUntil = 0;
let apiRequests = 0; // counts API requests, for the errors fault's every-5th rule

function currentFault() {
  if (fault !== "none" && Date.now() >= faultUntil) fault = "none";
  return fault;
}

// ---------------------------------------------------------------- the chat store

// Channel types are the clients' own names; a bounded number of them is kept, the rest
// count as "other" (label values must not grow without bound).
const MAX_CHANNEL_TYPES = 32;
const MAX_TEXT = 4000;
const channelTypes = new Set(["direct", "group", "channel"]);
for (const t of channelTypes) messagesSent.inc({ channel_type: t }, 0);

const conversations = new Map(); // id -> {id, title, messages: [{id, text, at}]}
for (let id = 1; id <= 50; id++) {
  conversations.set(id, { id, title: `conversation ${id}`, messages: [] });
}
let nextMessageId = 1;
const listCache = new Map(); // conversation id -> rendered message list, dropped on write

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Lognormal spread around a median, for --simulated-latency.
function spread(median) {
  const u = 1 - Math.random(), v = Math.random();
  return median * Math.exp(0.6 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
}

// One "database" operation: the store call, timed into database_query_duration_seconds.
async function query(operation, collection, medianSeconds, fn) {
  const end = dbDuration.startTimer({ operation, collection });
  try {
    if (args.simulatedLatency) await sleep(1000 * spread(medianSeconds));
    return fn();
  } finally {
    end();
  }
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function conversation(id) {
  const c = conversations.get(Number(id));
  if (!c) throw new HttpError(404, "no such conversation");
  return c;
}

async function listConversations() {
  return query("find", "conversations", 0.010, () =>
    [...conversations.values()].map((c) =>
      ({ id: c.id, title: c.title, messages: c.messages.length })));
}

async function listMessages(id) {
  const c = conversation(id);
  const cached = listCache.get(c.id);
  if (cached) {
    cacheHits.inc();
    return cached;
  }
  cacheMisses.inc();
  const list = await query("find", "messages", 0.015, () => c.messages.slice(-50));
  listCache.set(c.id, list);
  return list;
}

async function postMessage(id, body) {
  const started = process.hrtime.bigint();
  const c = conversation(id);
  if (typeof body.text !== "string" || body.text.length === 0 || body.text.length > MAX_TEXT) {
    throw new HttpError(400, `text must be a string of 1 to ${MAX_TEXT} characters`);
  }
  let type = typeof body.channel_type === "string" && body.channel_type !== ""
    ? body.channel_type : "direct";
  if (type.length > 64) throw new HttpError(400, "channel_type is longer than 64 characters");
  if (!channelTypes.has(type)) {
    if (channelTypes.size < MAX_CHANNEL_TYPES) channelTypes.add(type);
    else type = "other";
  }
  const message = { id: nextMessageId++, text: body.text, at: new Date().toISOString() };
  await query("insert", "messages", 0.020, () => {
    c.messages.push(message);
    if (c.messages.length > 1000) c.messages.shift();
  });
  await query("update", "conversations", 0.005, () => listCache.delete(c.id));
  messagesSent.inc({ channel_type: type });
  deliveryTime.observe(Number(process.hrtime.bigint() - started) / 1e6);
  return message;
}

// ---------------------------------------------------------------- HTTP

const MAX_BODY = 16 * 1024;

function readBody(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, "body too large"));
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      if (text === "") return resolve({});
      try {
        const parsed = JSON.parse(text);
        if (parsed === null || typeof parsed !== "object") throw new Error("not an object");
        resolve(parsed);
      } catch {
        reject(new HttpError(400, "body must be a JSON object"));
      }
    });
    req.on("error", reject);
  });
}

function send(res, status, body, contentType = "application/json") {
  const data = contentType === "application/json" ? JSON.stringify(body) : body;
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

// [method, pattern, route label, handler(match, req)] for the instrumented API.
const API = [
  ["GET", /^\/api\/conversations$/, "/api/conversations", () => listConversations()],
  ["GET", /^\/api\/conversations\/([^/]+)\/messages$/, "/api/conversations/:id/messages",
    (m) => listMessages(m[1])],
  ["POST", /^\/api\/conversations\/([^/]+)\/messages$/, "/api/conversations/:id/messages",
    async (m, req) => postMessage(m[1], await readBody(req))],
];

async function handleApi(req, res, path) {
  let route = null, status = 500;
  const end = requestDuration.startTimer();
  const started = Date.now();
  try {
    for (const [method, pattern, label, handler] of API) {
      const m = path.match(pattern);
      if (!m) continue;
      route = label;
      if (req.method !== method) continue;
      const mode = currentFault();
      const n = ++apiRequests;
      if (mode === "errors" && n % 5 === 0) {
        status = n % 10 === 0 ? 503 : 500;
        return send(res, status, { error: "demo fault: errors" });
      }
      const result = await handler(m, req);
      if (mode === "slow") await sleep(Math.max(1500, 9 * (Date.now() - started)));
      status = req.method === "POST" ? 201 : 200;
      return send(res, status, result);
    }
    if (route === null) throw new HttpError(404, "not found");
    throw new HttpError(405, "method not allowed");
  } catch (e) {
    status = e instanceof HttpError ? e.status : 500;
    if (!(e instanceof HttpError)) process.stderr.write(`chat-server: ${e.stack}\n`);
    if (!res.headersSent) send(res, status, { error: e.message });
  } finally {
    // Unknown paths are counted under one route label, never under the raw path.
    const labels = { method: req.method, route: route ?? "unmatched" };
    requestsTotal.inc({ ...labels, status_code: String(status) });
    end(labels);
  }
}

function handleFault(res, query) {
  const mode = query.get("mode") ?? "none";
  if (!["none", "errors", "slow", "unready"].includes(mode)) {
    return send(res, 400, { error: "mode must be none, errors, slow or unready" });
  }
  const seconds = Number(query.get("seconds") ?? "300");
  if (!Number.isFinite(seconds) || seconds < 0) {
    return send(res, 400, { error: "seconds must be a number >= 0" });
  }
  fault = mode;
  faultUntil = Date.now() + seconds * 1000;
  return send(res, 200, { fault: mode, seconds });
}

async function handle(req, res) {
  let url;
  try {
    url = new URL(req.url, "http://localhost");
  } catch {
    return send(res, 400, { error: "bad request target" });
  }
  const path = url.pathname;
  if (path === "/health") return send(res, 200, { status: "ok" });
  if (path === "/health/ready") {
    if (currentFault() === "unready") {
      return send(res, 503, { status: "unavailable", reason: "demo fault" });
    }
    return send(res, 200, { status: "ok" });
  }
  if (path === "/metrics") {
    try {
      return send(res, 200, await register.metrics(), register.contentType);
    } catch (e) {
      return send(res, 500, `# metrics failed: ${e.message}\n`, "text/plain");
    }
  }
  if (path === "/_demo/fault" && (req.method === "GET" || req.method === "POST")) {
    return handleFault(res, url.searchParams);
  }
  if (path.startsWith("/api/")) return handleApi(req, res, path);
  return send(res, 404, { error: "not found" });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    process.stderr.write(`chat-server: ${e.stack}\n`);
    if (!res.headersSent) send(res, 500, { error: "internal error" });
  });
});
server.keepAliveTimeout = 65_000;
server.on("connection", (socket) => {
  openConnections++;
  socket.on("close", () => openConnections--);
});

// ---------------------------------------------------------------- demo traffic

// Chat clients: about args.traffic requests per second, weighted like a chat app's mix.
function startTraffic(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const startedAt = Date.now();
  const request = (method, path, body) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent,
                               headers: body ? { "Content-Type": "application/json" } : {} },
                             (res) => res.resume());
    req.on("error", () => {});
    req.end(body ? JSON.stringify(body) : undefined);
  };
  const types = ["direct", "direct", "direct", "group", "group", "channel"];
  const tick = () => {
    const load = 1 + 0.5 * Math.sin(((Date.now() - startedAt) / 1200_000) * 2 * Math.PI);
    const n = Math.round(args.traffic * load * (0.8 + 0.4 * Math.random()));
    for (let i = 0; i < n; i++) {
      // A few requests for conversations that do not exist (404), as stale clients send.
      const id = Math.random() < 0.01 ? 9999 : 1 + Math.floor(Math.random() * conversations.size);
      const roll = Math.random();
      const delay = Math.random() * 1000;
      if (roll < 0.25) setTimeout(() => request("GET", "/api/conversations"), delay);
      else if (roll < 0.65) {
        setTimeout(() => request("GET", `/api/conversations/${id}/messages`), delay);
      }
      else {
        const channel_type = types[Math.floor(Math.random() * types.length)];
        setTimeout(() => request("POST", `/api/conversations/${id}/messages`,
                                 { text: `hello ${Date.now()}`, channel_type }), delay);
      }
    }
  };
  return setInterval(tick, 1000);
}

// A few session reads and writes per second in the demo's Redis (RESP by hand: one
// command at a time on one connection, reconnecting after a failure).
function startRedisTraffic(port) {
  let socket = null, pending = null, buffer = "";
  const connect = () => {
    socket = net.createConnection({ host: "127.0.0.1", port });
    socket.setEncoding("utf8");
    socket.on("data", (d) => {
      buffer += d;
      // Every reply the commands below get fits one line, or a bulk string's two.
      const lines = buffer.split("\r\n");
      const bulk = lines[0].startsWith("$") && lines[0] !== "$-1";
      const complete = bulk ? lines.length > 2 : lines.length > 1;
      if (complete && pending) {
        buffer = "";
        const p = pending;
        pending = null;
        p(lines[0]); // resolves with the reply's first line ("$-1": no such key)
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => { socket = null; pending = null; buffer = ""; });
  };
  const command = (...parts) => new Promise((resolve) => {
    if (socket === null) connect();
    pending = resolve;
    const encoded = parts.map((p) => `$${Buffer.byteLength(String(p))}\r\n${p}\r\n`);
    socket.write(`*${parts.length}\r\n${encoded.join("")}`);
  });
  let busy = false;
  return setInterval(async () => {
    if (busy) return;
    busy = true;
    const timeout = setTimeout(() => { if (socket) socket.destroy(); busy = false; }, 2000);
    try {
      // Cache-aside, as a healthy chat server's cache behaves (a hit ratio well above the
      // rule pack's 80 %): run.sh seeded sessions 1..500 and profiles 1..200. A session
      // that misses (a new one) is stored for an hour, one that hits gets its hour again
      // (sliding expiry, so the seeded ones do not all expire together); 1 profile read in
      // 21 asks for a user without a cached profile (a miss that stays one).
      const sid = 1 + Math.floor(Math.random() * 520);
      const reply = await command("GET", `session:${sid}`);
      if (reply === "$-1") {
        await command("SET", `session:${sid}`, `user=${sid}`, "EX", "3600");
      } else {
        await command("EXPIRE", `session:${sid}`, "3600");
      }
      await command("HGET", `user:${1 + Math.floor(Math.random() * 210)}:profile`, "name");
    } finally {
      clearTimeout(timeout);
      busy = false;
    }
  }, 250);
}

// ---------------------------------------------------------------- lifecycle

function removePidFile() {
  if (!args.pidFile) return;
  try {
    const pid = fs.readFileSync(args.pidFile, "utf8").trim();
    if (pid === String(process.pid)) fs.unlinkSync(args.pidFile);
  } catch {
    // already gone
  }
}

const timers = [];
server.on("error", (e) => {
  process.stderr.write(`chat-server: cannot listen on ${args.host}:${args.port}: ${e.message}\n`);
  process.exit(1);
});
server.listen(args.port, args.host, () => {
  const { port } = server.address();
  if (args.pidFile) {
    fs.writeFileSync(`${args.pidFile}.tmp`, `${process.pid}\n`);
    fs.renameSync(`${args.pidFile}.tmp`, args.pidFile);
  }
  if (args.traffic > 0) timers.push(startTraffic(port));
  if (args.redisPort) timers.push(startRedisTraffic(args.redisPort));
  // The port line is what a test started with --port 0 reads.
  process.stderr.write(`chat server on http://${args.host}:${port}/ (pid ${process.pid})\n`);
});

function stop() {
  timers.forEach(clearInterval);
  removePidFile();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
// SIGINT keeps its default: started in the background by run.sh it arrives ignored, and
// run.sh stops us with SIGTERM after Ctrl-C, in its own order.
process.on("SIGTERM", stop);
