package server

import (
	"encoding/json"
	"net/http"
)

// writeJSON answers with a JSON body; encoding errors can only be a
// client gone away, so they are not reported.
func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// writeError answers with {"error": message}.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}
