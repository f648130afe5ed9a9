// A minimal receiver for Kehu webhooks: node:http + `standardwebhooks` (npm).
//
//   npm install          # the version pinned in package.json
//   node receiver.mjs --port 8080 --secret whsec_...
//
// It verifies every request against the raw body bytes, answers 204 at once, drops duplicates by
// `webhook-id`, and does the work (here: prints "<type> <id>") afterwards.
// Run it behind your HTTPS reverse proxy: Kehu delivers to public `https://` URLs only.
//
// Kept in memory here: the ids already seen. A real receiver stores them, and the work to do,
// durably (say a table with a unique key on webhook-id) before it answers 2xx.

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";

const MAX_BODY = 10 * 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    secret: { type: "string" },
  },
});
if (!args.secret) {
  console.error("usage: node receiver.mjs [--host H] [--port N] --secret whsec_...");
  process.exit(2);
}

const webhook = new Webhook(args.secret);
const seen = new Set();

function answer(res, status, text = "") {
  res.writeHead(status, text ? { "content-type": "text/plain; charset=utf-8" } : {});
  res.end(text);
}

function handle(msgId, event) {
  // Your work here, e.g. upsert the customer in event.data.
  console.log(`${event.type} ${msgId}`);
}

const server = createServer((req, res) => {
  if (req.method !== "POST") return answer(res, 405, "POST only");
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > MAX_BODY) return answer(res, 413, "a body of at most 10 MiB is expected");
    const body = Buffer.concat(chunks); // the raw bytes: verify these, not re-encoded JSON
    let event;
    try {
      event = webhook.verify(body, req.headers); // signature and timestamp (±5 min)
    } catch (error) {
      return answer(res, 400, `invalid webhook: ${error.message}`);
    }
    const msgId = req.headers["webhook-id"]; // the event id: the same on every retry and replay
    const duplicate = seen.has(msgId);
    seen.add(msgId);
    answer(res, 204); // answer within 15 s; the work is done afterwards
    if (!duplicate) setImmediate(handle, msgId, event);
  });
});

server.listen(Number(args.port), args.host, () => {
  console.error(`listening on http://${args.host}:${args.port}`);
});
