package server

import "context"

// CheckWebsocketTokens runs the periodic check of open websockets' tokens
// now, for tests, which do not wait for its interval.
func (s *Server) CheckWebsocketTokens() { s.tokenChecks.sweep(context.Background()) }

// SharedEncodes counts the subscription results encoded once to be sent
// to every subscription of the same operation.
func (s *Server) SharedEncodes() int64 { return s.shares.encodes.Load() }
