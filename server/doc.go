// Package server is Klaxon's HTTP face: the routes (GraphQL, the
// playground, webhooks, health and metrics), the middleware around them
// (request logs, panic recovery, CORS, security headers, authentication)
// and the one place where domain errors become HTTP statuses and GraphQL
// error codes.
package server
