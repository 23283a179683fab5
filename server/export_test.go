package server

import "context"

// CheckWebsocketTokens runs the periodic check of open websockets' tokens
// now, for tests, which do not wait for its interval.
func (s *Server) CheckWebsocketTokens() { s.tokenChecks.sweep(context.Background()) }
