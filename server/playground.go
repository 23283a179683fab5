package server

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// playgroundFiles are GraphiQL and its page, served from the binary so the
// playground works without the internet (see playground/README.md).
//
//go:embed playground/index.html playground/*.js playground/*.css
var playgroundFiles embed.FS

// playgroundHandler serves GET /playground and the files it loads, under
// a policy that lets the page load scripts and styles from this server
// only and talk to its /graphql, over HTTP and websockets.
func playgroundHandler() http.Handler {
	page, err := playgroundFiles.ReadFile("playground/index.html")
	if err != nil {
		// The file is embedded at build time: only a broken build lacks it.
		panic("playground page not embedded: " + err.Error())
	}
	assets, err := fs.Sub(playgroundFiles, "playground")
	if err != nil {
		panic("playground assets not embedded: " + err.Error())
	}
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", playgroundPolicy(r.Host))
		name := strings.TrimPrefix(r.URL.Path, "/playground")
		switch {
		case name == "":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(page)
		case name == "/" || name == "/index.html" || path.Ext(name) != ".js" && path.Ext(name) != ".css":
			writeError(w, http.StatusNotFound, "no such route")
		default:
			if strings.Contains(name, "-") {
				// GraphiQL and React carry their version in their
				// names, so a name always means the same bytes.
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			}
			r.URL.Path = name
			files.ServeHTTP(w, r)
		}
	})
}

// playgroundPolicy is the playground's Content-Security-Policy: scripts
// and styles from this server only (none inline), its fonts and images
// from there or inlined in its stylesheet, and connections to this server
// alone. Websockets are named by host, as older browsers do not count
// ws: and wss: as 'self'.
func playgroundPolicy(host string) string {
	connect := "connect-src 'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; " +
		connect + "; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
}

// validHost reports whether host is a plain host[:port], safe to put in a
// header: anything else would let a request write its own policy.
func validHost(host string) bool {
	if host == "" {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}
