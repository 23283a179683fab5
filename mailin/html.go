package mailin

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText reads an HTML body as a person would see it: the text of
// the elements, one line per block, list items marked, links followed by
// their address, and nothing of scripts, styles or the head.
func htmlToText(src string) string {
	var out strings.Builder
	// skipping counts the open elements whose text is never shown.
	skipping := 0
	line := false // the current line has text
	space := false
	newline := func() {
		if line {
			out.WriteByte('\n')
		}
		line, space = false, false
	}
	write := func(s string) {
		if strings.TrimLeft(s, " \t\r\n\u00a0") != s {
			space = true
		}
		for _, word := range strings.Fields(s) {
			if line && space {
				out.WriteByte(' ')
			}
			out.WriteString(word)
			line, space = true, true
		}
		// Words of two text tokens are one word unless a space parts them.
		space = s != "" && strings.TrimRight(s, " \t\r\n\u00a0") != s
	}
	z := html.NewTokenizer(strings.NewReader(src))
	var hrefs []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return strings.TrimSpace(out.String())
		case html.TextToken:
			if skipping == 0 {
				write(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			switch a {
			case atom.Script, atom.Style, atom.Head, atom.Title:
				if tt == html.StartTagToken {
					skipping++
				} else if tt == html.EndTagToken && skipping > 0 {
					skipping--
				}
				continue
			case atom.Br:
				newline()
				continue
			case atom.A:
				if tt == html.StartTagToken {
					href := ""
					for hasAttr {
						var key, val []byte
						key, val, hasAttr = z.TagAttr()
						if string(key) == "href" {
							href = string(val)
						}
					}
					hrefs = append(hrefs, href)
				} else if tt == html.EndTagToken && len(hrefs) > 0 {
					href := hrefs[len(hrefs)-1]
					hrefs = hrefs[:len(hrefs)-1]
					if strings.HasPrefix(href, "http://") || strings.HasPrefix(href, "https://") {
						space = true
						write("(" + href + ")")
					}
				}
				continue
			}
			if blockElements[a] {
				newline()
				if a == atom.Li && tt == html.StartTagToken {
					out.WriteString("- ")
					line = true
				}
			} else if a == atom.Td || a == atom.Th {
				space = true
			}
		}
	}
}

// blockElements start and end a line of text.
var blockElements = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Li: true, atom.Ul: true, atom.Ol: true, atom.Tr: true, atom.Table: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Blockquote: true, atom.Pre: true, atom.Hr: true, atom.Section: true, atom.Article: true,
	atom.Header: true, atom.Footer: true, atom.Dt: true, atom.Dd: true, atom.Body: true,
}
