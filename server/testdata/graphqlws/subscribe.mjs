// Subscribes to Klaxon's alertEvents and inboundLog with the graphql-ws
// client and prints every result as one JSON line, so a test can read
// what a real browser-side client receives.
//
//   node subscribe.mjs ws://127.0.0.1:8080/graphql <token>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node subscribe.mjs <ws url> <token>');
  process.exit(2);
}

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: {
    connected: () => console.log(JSON.stringify({ connected: true })),
    closed: (event) => {
      console.error(`closed: ${event.code} ${event.reason}`);
      process.exit(1);
    },
  },
});

const subscriptions = {
  alertEvents: 'subscription { alertEvents { cursor type alert { id status severity subject } } }',
  inboundLog: 'subscription { inboundLog { id cursor status alert { id } } }',
};

for (const [name, query] of Object.entries(subscriptions)) {
  client.subscribe(
    { query },
    {
      next: (result) => console.log(JSON.stringify({ [name]: result })),
      error: (err) => {
        console.error(`${name}: ${JSON.stringify(err)}`);
        process.exit(1);
      },
      complete: () => {},
    },
  );
}
